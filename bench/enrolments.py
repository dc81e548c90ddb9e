"""Enrolments per second: Nurture's enrol() against raw Temporal starts, on the same dev server, in one run.

Usage: .venv/bin/python bench/enrolments.py [N]   (prints figures; not a test)
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client

from connectors.dryrun import DryRunConnector
from connectors.registry import CHANNELS
from engine.lead import LeadState
from engine.validator import load_or_raise
from nurture.services import temporal_cli
from store.store import Store
from workflows.enrolment import enrol
from workflows.messages import DATA_CONVERTER
from workflows.worker import make_worker

MODEL = """
id: bench
name: Bench
start: hello
steps:
  - {id: hello, kind: email, subject: Hello, body: b, next: month}
  - {id: month, kind: wait, duration: 30d, next: bye}
  - {id: bye, kind: email, subject: Bye, body: b}
"""
CONCURRENCY = 32


@workflow.defn(name="RawStart")
class RawStart:
    @workflow.run
    async def run(self, lead_id: str) -> None:
        await workflow.sleep(30 * 86400)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def timed(label: str, n: int, start_one: Callable[[int], Awaitable[object]]) -> float:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await start_one(i)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    rate = n / (time.perf_counter() - began)
    print(f"{label:<34} {n:>6} starts  {rate:8.1f} /s")
    return rate


async def main(n: int) -> None:
    port = free_port()
    server = subprocess.Popen([temporal_cli(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
                               "--port", str(port), "--log-level", "error"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                client = await Client.connect(f"127.0.0.1:{port}", data_converter=DATA_CONVERTER)
                break
            except RuntimeError:
                await asyncio.sleep(0.5)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
            version = store.publish(load_or_raise(MODEL))
            queue = f"bench-{uuid.uuid4()}"
            # Starts are timed with no worker running, so both figures measure the same thing: getting runs
            # durably started. The worker's own throughput is timed after, draining the started runs.
            raw = await timed("raw Temporal start_workflow", n, lambda i: client.start_workflow(
                RawStart.run, f"raw-{i}", id=f"raw/{uuid.uuid4()}", task_queue=queue + "-raw"))
            ours = await timed("Nurture enrol (DB + start)", n, lambda i: enrol(
                client, store, version, LeadState(id=f"lead-{i}", email=f"l{i}@example.com"), task_queue=queue))
            print(f"Nurture / raw start rate: {ours / raw:.2f}")
            worker = make_worker(client, store, {c: DryRunConnector() for c in CHANNELS}, task_queue=queue)
            async with worker:
                began = time.perf_counter()
                while sum(o.step == "hello" for o in store.outbox()) < n:
                    await asyncio.sleep(0.2)
                spent = time.perf_counter() - began
                print(f"{'worker: first email, then waiting':<34} {n:>6} leads  {n / spent:8.1f} /s")
    finally:
        server.terminate()
        server.wait(timeout=15)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
