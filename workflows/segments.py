"""Segments saved and enrolled in bulk. A bulk enrolment goes a page of members at a time, at a set rate, each
enrolment keyed by the job and the lead (so a resumed or repeated job starts no one twice) and handed to Temporal
through the deliveries table (so none is lost when Temporal or the process is down)."""

from __future__ import annotations

import asyncio
import time
import uuid

from temporalio.client import Client

from engine.segments import SegmentIn, compile_segment
from store.deliveries import Deliveries
from store.segments import Changes, Segments
from store.store import Store
from store.tables import BulkEnrolment, Segment
from workflows.ingest import deliver_pending, enrol_row
from workflows.messages import TASK_QUEUE

PAGE = 200


class SegmentProblems(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def save_segment(store: Store, given: SegmentIn, by: str, now: float) -> tuple[Segment, Changes]:
    """Stores the segment and brings its membership up to date. Leads already matching are members from now on
    without having 'joined' (enrol them in bulk if they should start a care model)."""
    compiled, problems = compile_segment(given.condition)
    if compiled is None:
        raise SegmentProblems(problems)
    segments = Segments(store)
    row = segments.save(Segment(id=given.id, name=given.name, condition=given.condition, compiled=compiled,
                                created_by=by, updated_at=now))
    return row, segments.refresh(row.id, compiled, now)


def start_enrolment(store: Store, segment: Segment, care_model: str, by: str) -> BulkEnrolment:
    if store.latest(care_model) is None:
        raise ValueError(f"care model '{care_model}' is not published: publish it before enrolling a segment")
    if care_model in store.archived():
        raise ValueError(f"care model '{care_model}' is archived: restore it to enrol leads")
    segments = Segments(store)
    return segments.start_job(BulkEnrolment(id=uuid.uuid4().hex[:12], segment=segment.id, care_model=care_model,
                                            total=segments.count(segment.id), by=by, started_at=time.time()))


async def run_enrolment(client: Client | None, store: Store, job: BulkEnrolment, per_second: float,
                        task_queue: str = TASK_QUEUE) -> BulkEnrolment:
    """Enrols the segment's members after the job's cursor, at most `per_second` a second; progress is stored as
    it goes. What Temporal does not take now stays pending for the redelivery loop."""
    segments, deliveries = Segments(store), Deliveries(store)
    cursor, done = job.cursor, job.done
    started = time.monotonic()
    sent = 0
    while page := segments.member_ids(job.segment, after=cursor, limit=PAGE):
        deliveries.add([enrol_row(f"bulk/{job.id}/{lead_id}>enrol/{job.care_model}", lead_id, job.care_model, None,
                                  time.time()) for lead_id in page])
        for lead_id in page:
            await deliver_pending(client, store, lead_id, task_queue)
            sent += 1
            ahead = sent / per_second - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        cursor, done = page[-1], done + len(page)
        segments.advance(job.id, cursor, done)
    segments.advance(job.id, cursor, done, finished_at=time.time())
    return segments.job(job.id) or job
