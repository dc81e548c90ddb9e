"""Keeps `nurture up`'s parts alive: a part that dies is restarted with a back-off, and one that keeps dying stops
Nurture with a message saying which part and where its log is, instead of serving on without it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path


class PartFailed(RuntimeError):
    """A part of Nurture died more often than `Backoff` allows."""


class Backoff:
    """1 s, 2 s, 4 s … up to 30 s between restarts; more than `limit` restarts within `window` seconds is a failure."""

    def __init__(self, part: str, limit: int = 5, window: float = 300.0) -> None:
        self.part, self.limit, self.window = part, limit, window
        self.restarts: deque[float] = deque()

    async def wait(self, why: str) -> None:
        now = time.monotonic()
        while self.restarts and now - self.restarts[0] > self.window:
            self.restarts.popleft()
        if len(self.restarts) >= self.limit:
            raise PartFailed(f"{self.part} {why}, {self.limit + 1} times in {self.window:.0f}s; giving up")
        delay = min(30.0, 2.0 ** len(self.restarts))
        print(f"nurture: {self.part} {why}; restarting it in {delay:.0f}s", file=sys.stderr, flush=True)
        self.restarts.append(now)
        await asyncio.sleep(delay)


async def keep_process(start: Callable[[], subprocess.Popen[bytes]], part: str, log: Path,
                       holder: list[subprocess.Popen[bytes]], poll_seconds: float = 0.5) -> None:
    """Watches the child in `holder[0]` (started already) and restarts it through `start` when it exits."""
    backoff = Backoff(f"{part} (log: {log})")
    while True:
        await asyncio.sleep(poll_seconds)
        code = holder[0].poll()  # also reaps it, so no <defunct> child is left behind
        if code is not None:
            await backoff.wait(f"exited with status {code}")
            holder[0] = start()


async def keep_task(run: Callable[[], Awaitable[None]], part: str) -> None:
    """Runs `run` until it returns; restarts it when it raises."""
    backoff = Backoff(part)
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of the part: it is restarted, and its reason shown
            await backoff.wait(f"failed ({type(exc).__name__}: {exc})")
