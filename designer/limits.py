"""Rate limits for public endpoints, per process: a token bucket per key (a client address, say)."""

from __future__ import annotations

import threading
import time


class RateLimit:
    def __init__(self, per_minute: int, burst: int | None = None, keys: int = 50_000) -> None:
        self.rate, self.burst, self.keys = per_minute / 60.0, float(burst or max(per_minute // 4, 1)), keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if len(self._buckets) >= self.keys and key not in self._buckets:
                self._buckets.clear()  # bounded memory; a flood of new addresses at worst resets everyone's bucket
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1, now)
            return True
