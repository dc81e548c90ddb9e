"""Segments and who is in them: evaluated over leads a page at a time, membership kept so joining is an event."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import col, select

from engine.conditions import evaluate
from engine.lead import MAX_EVENTS, LeadEvent, LeadState
from engine.segments import uses_events
from store.store import Store, lead_state
from store.tables import BulkEnrolment, EventRow, Lead, Segment, SegmentMember

PAGE = 1000


@dataclass
class Changes:
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


class Segments:
    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, row: Segment) -> Segment:
        with self.store.session() as s:
            s.merge(row)
        self.store.changed()
        return row

    def all(self) -> list[Segment]:
        return self.store.settled("segments", self._all)

    def _all(self) -> list[Segment]:
        with self.store.session() as s:
            return list(s.exec(select(Segment).order_by(col(Segment.name))))

    def get(self, segment_id: str) -> Segment | None:
        with self.store.session() as s:
            return s.get(Segment, segment_id)

    def count(self, segment_id: str) -> int:
        with self.store.session() as s:
            return s.exec(select(func.count()).select_from(SegmentMember)
                          .where(col(SegmentMember.segment) == segment_id)).one()

    def member_ids(self, segment_id: str, after: str = "", limit: int = PAGE) -> list[str]:
        with self.store.session() as s:
            return list(s.exec(select(SegmentMember.lead_id).where(col(SegmentMember.segment) == segment_id,
                                                                   col(SegmentMember.lead_id) > after)
                               .order_by(col(SegmentMember.lead_id)).limit(limit)))

    def states(self, with_events: bool) -> Iterator[LeadState]:
        """Every lead as a condition sees it, a page at a time (timelines only when the condition needs them)."""
        after = ""
        while True:
            with self.store.session() as s:
                rows = list(s.exec(select(Lead).where(col(Lead.id) > after).order_by(col(Lead.id)).limit(PAGE)))
                events: dict[str, list[LeadEvent]] = {}
                if rows and with_events:
                    for e in s.exec(select(EventRow).where(col(EventRow.lead_id).in_([r.id for r in rows]))
                                    .order_by(col(EventRow.at))):
                        events.setdefault(e.lead_id, []).append(LeadEvent(e.id, e.type, e.at, e.data))
            for row in rows:
                state = lead_state(row)
                state.events = events.get(row.id, [])[-MAX_EVENTS:]
                yield state
            if len(rows) < PAGE:
                return
            after = rows[-1].id

    def matching(self, compiled: dict[str, Any], now: float) -> Iterator[LeadState]:
        return (lead for lead in self.states(uses_events(compiled)) if evaluate(compiled, lead, now)[0])

    def refresh(self, segment_id: str, compiled: dict[str, Any], now: float) -> Changes:
        """Membership brought up to date with the condition: who joined, who left."""
        now_in = {lead.id for lead in self.matching(compiled, now)}
        with self.store.session() as s:
            was_in = set(s.exec(select(SegmentMember.lead_id).where(col(SegmentMember.segment) == segment_id)))
            changes = Changes(sorted(now_in - was_in), sorted(was_in - now_in))
            s.add_all(SegmentMember(segment=segment_id, lead_id=lead_id, joined_at=now) for lead_id in changes.joined)
            if changes.left:
                s.exec(delete(SegmentMember).where(col(SegmentMember.segment) == segment_id,
                                                   col(SegmentMember.lead_id).in_(changes.left)))
        return changes

    def place_many(self, leads: list[tuple[LeadState, float]],
                   segments: list[Segment] | None = None) -> dict[str, Changes]:
        """Leads checked against every segment (read here, unless given): the segments each joined and left, with
        membership read and written in one transaction."""
        segments = self.all() if segments is None else segments
        changes = {lead.id: Changes() for lead, _ in leads}
        if not segments:
            return changes
        with self.store.session() as s:
            member_of: dict[str, set[str]] = {}
            for segment_id, lead_id in s.exec(select(col(SegmentMember.segment), col(SegmentMember.lead_id))
                                              .where(col(SegmentMember.lead_id).in_(list(changes)))):
                member_of.setdefault(lead_id, set()).add(segment_id)
            for lead, now in leads:
                was = member_of.get(lead.id, set())
                for segment in segments:
                    inside = evaluate(segment.compiled, lead, now)[0]
                    if inside and segment.id not in was:
                        s.add(SegmentMember(segment=segment.id, lead_id=lead.id, joined_at=now))
                        changes[lead.id].joined.append(segment.id)
                    elif not inside and segment.id in was:
                        s.exec(delete(SegmentMember).where(
                            col(SegmentMember.segment) == segment.id, col(SegmentMember.lead_id) == lead.id))
                        changes[lead.id].left.append(segment.id)
        return changes

    # --- bulk enrolments ---------------------------------------------------------------------------

    def start_job(self, job: BulkEnrolment) -> BulkEnrolment:
        with self.store.session() as s:
            s.add(job)
        return job

    def job(self, job_id: str) -> BulkEnrolment | None:
        with self.store.session() as s:
            return s.get(BulkEnrolment, job_id)

    def jobs(self, segment_id: str) -> list[BulkEnrolment]:
        with self.store.session() as s:
            return list(s.exec(select(BulkEnrolment).where(col(BulkEnrolment.segment) == segment_id)
                               .order_by(col(BulkEnrolment.started_at).desc())))

    def advance(self, job_id: str, cursor: str, done: int, finished_at: float | None = None) -> None:
        with self.store.session() as s:
            job = s.get(BulkEnrolment, job_id)
            if job is not None:
                job.cursor, job.done, job.finished_at = cursor, done, finished_at
                s.add(job)
