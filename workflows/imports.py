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

CHUNK = 500  # leads per transaction; progress is reported after each


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
    done, refused = 0, set[str]()
    for start in range(0, len(found.leads), CHUNK):
        chunk = found.leads[start:start + CHUNK]
        # New leads in one transaction; a lead already here changes as PUT /api/leads changes it, with its events.
        created = store.add_new_leads([(lead.to_state(), lead.unsubscribed) for lead in chunk])
        report.created += len(created)
        for lead in chunk:
            if lead.id in created:
                continue
            try:
                status, _ = await upsert(client, store, lead, str(uuid.uuid4()), time.time(), task_queue,
                                         why="imported from a CSV file")
            except ResubscribeRefused as exc:
                report.problems.append(str(RowProblem(found.lines[lead.id][-1], "unsubscribed", str(exc))))
                refused.add(lead.id)
                continue
            setattr(report, status, getattr(report, status) + 1)
        if enrol is not None:
            Deliveries(store).add([enrol_row(f"import/{digest}/{lead.id}>enrol/{enrol}", lead.id, enrol, None,
                                             time.time()) for lead in chunk if lead.id not in refused])
            for lead in chunk:
                delivered = await deliver_pending(client, store, lead.id, task_queue)
                report.enrolled += len(delivered.enrolled)
                report.pending += len(delivered.pending)
        done += len(chunk)
        progress(done, len(found.leads))
    return report
