"""Leads and events coming in, on SQLite, with the example scoring model published (every event is scored):

- a CSV import of new leads (leads/s), in process;
- events through POST /api/events in batches of 1,000 (events/s; aim 2,000/s here), in process;
- single events through POST /api/events at concurrency 8 (events/s, p50 and p95), against a web process;
- tracker page views through POST /t/hit at concurrency 8 (hits/s), against the same web process.

No care model listens and Temporal is not running: this is the recording, scoring and segment path. The last line
is one JSON object with the figures. `python bench/ingest.py --rows 100000` is the size the issue asks for."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from store.sales import SalesStore
from store.segments import Segments
from store.store import Store
from store.tables import Segment
from store.website import Website
from tests.accounts import token_headers
from workflows.imports import import_leads

SCORING = {"engagement": [{"name": "visited pricing", "event": "page.visited", "points": 2, "where": {"page": "/p/1"}},
                          {"name": "clicked an email", "event": "email.clicked", "points": 10}],
           "half_life": "30d"}
HOT = {"type": "score", "score": "total", "op": "gte", "value": 20}


def prepared(folder: Path) -> Store:
    store = Store.open(f"sqlite:///{folder / 'nurture.db'}")
    SalesStore(store).publish_scoring(SCORING)
    Segments(store).save(Segment(id="hot", name="Hot", condition=HOT, compiled=HOT, updated_at=time.time()))
    return store


async def imported(rows: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = prepared(Path(tmp))
        text = "id,email,company,country\n" + "".join(f"l{i},l{i}@acme.test,Co {i % 97},DE\n" for i in range(rows))
        started = time.perf_counter()
        report = await import_leads(None, store, text)
        took = time.perf_counter() - started
    assert report.created == rows, report
    print(f"CSV import of {rows:,} new leads: {rows / took:,.0f} leads/s ({took:.1f} s)", flush=True)
    return rows / took


async def batches(count: int, leads: int) -> float:
    from designer.app import create_app
    from nurture.settings import Settings
    with tempfile.TemporaryDirectory() as tmp:
        store = prepared(Path(tmp))
        app = create_app(Settings(data_dir=Path(tmp), temporal_address="127.0.0.1:1"), store=store)
        headers = token_headers(store, "events:write")
        events = [{"id": uuid.uuid4().hex, "lead_id": f"lead-{i % leads}", "type": "page.visited",
                   "data": {"page": f"/p/{i % 7}"}} for i in range(count)]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nurture") as client:
            started = time.perf_counter()
            for i in range(0, count, 1000):
                answer = await client.post("/api/events", json=events[i:i + 1000], headers=headers, timeout=120)
                assert answer.json()["counts"] == {"accepted": 1000}, answer.text[:300]
            rate = count / (time.perf_counter() - started)
    print(f"POST /api/events, {count:,} events over {leads:,} leads in batches of 1,000: {rate:,.0f} events/s "
          f"(aim 2,000/s)", flush=True)
    return rate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def concurrently(url: str, bodies: list[Any], headers: dict[str, str],
                       workers: int = 8) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = list(reversed(bodies))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            started = time.perf_counter()
            answer = await client.post(url, **body, headers=headers)
            latencies.append(time.perf_counter() - started)
            assert answer.status_code in (200, 204), answer.text[:300]

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=workers)) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(workers)))
        took = time.perf_counter() - started
    return len(bodies) / took, sorted(latencies)


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


async def served(count: int) -> dict[str, float]:
    """Single events and tracker hits against `nurture web`'s app in its own process, as an operator runs it."""
    with tempfile.TemporaryDirectory() as tmp:
        store = prepared(Path(tmp))
        headers = token_headers(store, "events:write")
        site = Website(store).add_site("www", "Bench", ["https://www.acme.test"], False, time.time())
        store.engine.dispose()
        port = free_port()
        env = {**os.environ, "NURTURE_DATA_DIR": tmp, "NURTURE_TEMPORAL_ADDRESS": "127.0.0.1:1",
               "NURTURE_TRACKER_PER_MINUTE": str(10**9), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "designer.app:create_app",
                                   "--port", str(port), "--log-level", "warning"], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    httpx.get(f"{base}/sign-in", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            events = [{"json": {"id": uuid.uuid4().hex, "lead_id": f"lead-{i % 500}", "type": "page.visited",
                                "data": {"page": f"/p/{i % 7}"}}} for i in range(count)]
            rate, lat = await concurrently(f"{base}/api/events", events, headers)
            print(f"POST /api/events one event per request, concurrency 8: {rate:,.0f}/s, p50 {pct(lat, .5):.0f} ms, "
                  f"p95 {pct(lat, .95):.0f} ms (the issue measured 366/s, p95 27 ms)", flush=True)
            hits = [{"content": json.dumps({"k": site.key, "v": f"visitor{i % 300:04d}", "i": uuid.uuid4().hex,
                                            "u": f"https://www.acme.test/p/{i % 9}", "t": "Page", "r": "", "c": True})}
                    for i in range(count)]
            hit_rate, hit_lat = await concurrently(f"{base}/t/hit", hits, {"origin": "https://www.acme.test",
                                                                           "content-type": "text/plain"})
            print(f"tracker page views POST /t/hit, concurrency 8: {hit_rate:,.0f} hits/s, "
                  f"p95 {pct(hit_lat, .95):.0f} ms", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {"single_events_per_s": round(rate), "single_p50_ms": round(pct(lat, .5), 1),
            "single_p95_ms": round(pct(lat, .95), 1), "tracker_hits_per_s": round(hit_rate),
            "tracker_p95_ms": round(pct(hit_lat, .95), 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="CSV rows to import (the issue asks 100,000)")
    parser.add_argument("--events", type=int, default=20_000, help="events sent in batches of 1,000")
    parser.add_argument("--requests", type=int, default=3_000, help="single events, and tracker hits, at 8 at once")
    args = parser.parse_args()
    figures: dict[str, Any] = {"import_leads_per_s": round(await imported(args.rows)), "import_rows": args.rows,
                               "batch_events_per_s": round(await batches(args.events, leads=args.events // 4))}
    figures |= await served(args.requests)
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
