"""Leads and events coming in: a CSV import of new leads (leads/s), and events through the API one per request
against batches of up to 1,000 (no care model listening: the recording and scoring path). In-process, SQLite."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from designer.app import create_app
from nurture.settings import Settings
from store.store import Store
from tests.accounts import token_headers
from workflows.imports import import_leads


async def main(count: int = 2000, leads: int = 200) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'nurture.db'}")
        app = create_app(Settings(data_dir=Path(tmp), temporal_target="127.0.0.1:1"), store=store)
        headers = token_headers(store, "events:write")
        events = [{"id": uuid.uuid4().hex, "lead_id": f"lead-{i % leads}", "type": "page.visited",
                   "data": {"page": f"/p/{i % 7}"}} for i in range(2 * count)]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nurture") as client:
            started = time.perf_counter()
            for event in events[:count]:
                assert (await client.post("/api/events", json=event, headers=headers)).status_code == 200
            one = count / (time.perf_counter() - started)
            started = time.perf_counter()
            for i in range(count, 2 * count, 1000):
                answer = await client.post("/api/events", json=events[i:i + 1000], headers=headers)
                assert answer.json()["counts"] == {"accepted": 1000}, answer.text[:300]
            batch = count / (time.perf_counter() - started)
    print(f"events through POST /api/events, {count} each way: one per request {one:.0f}/s, "
          f"batches of 1,000 {batch:.0f}/s ({batch / one:.2f}x)")


async def imported(rows: int = 20_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'nurture.db'}")
        text = "id,email,company,country\n" + "".join(f"l{i},l{i}@acme.test,Co {i % 97},DE\n" for i in range(rows))
        started = time.perf_counter()
        report = await import_leads(None, store, text)
        took = time.perf_counter() - started
    assert report.created == rows, report
    print(f"CSV import of {rows} new leads: {rows / took:.0f} leads/s ({took:.1f} s)")


if __name__ == "__main__":
    asyncio.run(imported())
    asyncio.run(main())
