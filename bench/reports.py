"""How long a care model's report takes over many journey rows, on SQLite (aim: p95 under 300 ms over a million
rows). The history is written directly, then its running totals are built as migration 9 builds them for an old
database (the same totals runs keep as they go); the report reads those. `python bench/reports.py --rows 1000000`.
The last line is one JSON object."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from store.reports import experiments, report
from store.rollups import rebuild
from store.store import Store
from store.tables import CareModelVersion, Enrolment, JourneyRow, OutboxRow
from tests.postgres import PostgresServer

STEPS = ["split", "mail-a", "mail-b", "wait", "end"]


def fill(store: Store, rows: int) -> None:
    """Runs of five steps each (a split, one email, a wait, the end), a third of them converted."""
    runs = rows // 4
    first = datetime.now(UTC) - timedelta(days=90)
    with store.session() as s:
        s.add(CareModelVersion(care_model="bench", version=1, name="Bench", hash="-", document={},
                               plan={"start": "split"}))
        for n in range(runs):
            enrolment = uuid.uuid4().hex
            arm = "A" if n % 2 else "B"
            s.add(Enrolment(enrolment=enrolment, workflow_id=f"nurture/bench/l{n}", care_model="bench", version=1,
                            lead_id=f"l{n}", status="done", outcome="goal:mql" if n % 3 == 0 else "completed",
                            started_at=first + timedelta(days=n % 90)))
            for seq, step in enumerate(["split", f"mail-{arm.lower()}", "wait", "end"]):
                s.add(JourneyRow(key=f"{enrolment}/{seq}", enrolment=enrolment, lead_id=f"l{n}", care_model="bench",
                                 version=1, seq=seq, step=step, kind=step.split("-")[0], at=1e9 + n + seq * 86400,
                                 outcome=f"variant '{arm}'" if step == "split" else "done"))
            s.add(OutboxRow(key=f"nurture/bench/l{n}/{enrolment}/mail-{arm.lower()}/1", lead_id=f"l{n}",
                            care_model="bench", step=f"mail-{arm.lower()}", channel="email", connector="smtp",
                            status="sent", at=1e9 + n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="journey rows (a run has four)")
    parser.add_argument("--times", type=int, default=7)
    parser.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL instead of SQLite")
    args = parser.parse_args()
    server = PostgresServer() if args.postgres else None
    if server is not None:
        server.start()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(server.new_database() if server else f"sqlite:///{Path(tmp) / 'nurture.db'}")
        started = time.perf_counter()
        fill(store, args.rows)
        print(f"{args.rows:,} journey rows written in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        with store.engine.begin() as conn:
            rebuild(conn)
        built = time.perf_counter() - started
        print(f"running totals built from that history in {built:.1f} s", flush=True)
        assert report(store, "bench").enrolled == args.rows // 4
        took = []
        for _ in range(args.times):
            started = time.perf_counter()
            experiments(report(store, "bench"), 0.1)
            took.append((time.perf_counter() - started) * 1000)
    if server is not None:
        store.engine.dispose()
        server.stop()
    took.sort()
    p95 = took[min(len(took) - 1, round(0.95 * (len(took) - 1)))]
    median = took[len(took) // 2]
    print(f"care-model report with its experiments over {args.rows:,} journey rows: median {median:.0f} ms, "
          f"p95 {p95:.0f} ms on {'PostgreSQL' if args.postgres else 'SQLite'} (aim: p95 under 300 ms at 1,000,000)")
    print(json.dumps({"database": "postgresql" if args.postgres else "sqlite", "journey_rows": args.rows,
                      "rebuild_s": round(built, 1), "report_median_ms": round(median),
                      "report_p95_ms": round(p95)}))


if __name__ == "__main__":
    main()
