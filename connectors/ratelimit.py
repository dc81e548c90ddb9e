"""Per-connector rate limits: a token bucket in front of send()."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from connectors.base import Connector, InboundEvent, Message, RateLimited, Receipt


class TokenBucket:
    def __init__(self, per_minute: float, burst: float | None = None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = burst or max(1.0, per_minute / 60.0)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 when a send may go now, else seconds until one may."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


class RateLimitedConnector:
    """Wraps a connector; a send over the limit raises RateLimited so the activity retries it later."""

    def __init__(self, inner: Connector, per_minute: float) -> None:
        self.inner = inner
        self.bucket = TokenBucket(per_minute)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send(self, message: Message) -> Receipt:
        wait = self.bucket.take()
        if wait:
            raise RateLimited(wait)
        return self.inner.send(message)

    def verify_inbound(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        return self.inner.verify_inbound(headers, body)
