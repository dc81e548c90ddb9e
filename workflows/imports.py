"""A CSV of leads brought in: each lead created or updated as the API would, optionally enrolled in a care model.
Repeating an import, or resuming one that stopped, changes nothing twice: leads are keyed by id (or email), and an
enrolment is keyed by the file and the lead."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio.client import Client

from engine.imports import RowProblem, read_leads
from store.deliveries import Deliveries
from store.store import Store
from workflows.ingest import deliver_pending, enrol_row
from workflows.leads import ResubscribeRefused, upsert
from workflows.messages import TASK_QUEUE


@dataclass
class ImportReport:
    """What an import did. `problems`: each bad row by line, column and reason (the other rows came in)."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    enrolled: int = 0
    problems: list[str] = field(default_factory=list)
    pending: int = 0  # enrolments Temporal has not taken yet; retried until it does


async def import_leads(client: Client | None, store: Store, text: str, mapping: dict[str, str] | None = None,
                       enrol: str | None = None, task_queue: str = TASK_QUEUE,
                       progress: Callable[[int, int], None] = lambda done, total: None) -> ImportReport:
    """Every good row in; every bad row reported by line, column and reason, and nothing else held back."""
    if enrol is not None and store.latest(enrol) is None:
        raise ValueError(f"care model '{enrol}' is not published: publish it before enrolling an import in it")
    found = read_leads(text, mapping, store.lead_id_by_email)
    report = ImportReport(rows=found.rows, problems=[str(p) for p in found.problems])
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    for n, lead in enumerate(found.leads):
        try:
            status, _ = await upsert(client, store, lead, str(uuid.uuid4()), time.time(), task_queue,
                                     why="imported from a CSV file")
        except ResubscribeRefused as exc:
            report.problems.append(str(RowProblem(found.lines[lead.id][-1], "unsubscribed", str(exc))))
            continue
        setattr(report, status, getattr(report, status) + 1)
        if enrol is not None:
            key = f"import/{digest}/{lead.id}>enrol/{enrol}"
            Deliveries(store).add([enrol_row(key, lead.id, enrol, None, time.time())])
            done = await deliver_pending(client, store, lead.id, task_queue)
            report.enrolled += len(done.enrolled)
            report.pending += len(done.pending)
        progress(n + 1, len(found.leads))
    return report
