"""Keeps the report's running totals in step with what runs record, in the same transaction as the record."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session, col, select

from engine.rollups import Tally, Visit, ended, merge, recorded
from store.tables import ArmRollup, Enrolment, EventRow, JourneyRow, OutboxRow, StepRollup

MESSAGE_MARKS = {"email.opened": "opened_at", "email.clicked": "clicked_at", "lead.unsubscribed": "unsubscribed_at"}


def mark_message(s: Session, event_type: str, data: dict[str, Any], at: float) -> None:
    """The first open, click or unsubscribe that names a message, marked on its outbox row."""
    mark = MESSAGE_MARKS.get(event_type)
    message = s.get(OutboxRow, str(data["message"])) if mark and data.get("message") else None
    if message is not None and mark is not None and getattr(message, mark) is None:
        setattr(message, mark, at)
        s.add(message)


def visit(row: JourneyRow) -> Visit:
    return Visit(row.seq, row.version, row.step, row.kind, row.at, row.outcome)


def day_of(run: Enrolment | None) -> str:
    return run.started_at.strftime("%Y-%m-%d") if run is not None else ""


def add(s: Session, care_model: str, day: str, tally: Tally) -> None:
    # Rows are locked (PostgreSQL) and in one order, so concurrent runs add up instead of overwriting each other
    # and never wait on each other in a circle. Two first inserts of one row collide; the loser's activity retries.
    keys = set(tally.entered) | set(tally.passed) | set(tally.exited) | set(tally.converted) | set(tally.waits)
    for version, step in sorted(keys):
        row = s.get(StepRollup, (care_model, version, step, day), with_for_update=True) or StepRollup(
            care_model=care_model, version=version, step=step, day=day)
        key = (version, step)
        row.kind = row.kind or tally.kinds.get(key, "")
        row.entered += tally.entered[key]
        row.passed += tally.passed[key]
        row.exited += tally.exited[key]
        row.converted += tally.converted[key]
        if key in tally.waits:
            waits = dict(row.waits)
            for bucket, n in tally.waits[key].items():
                waits[bucket] = waits.get(bucket, 0) + n
            row.waits = waits
        s.add(row)
    for step, arm in sorted(set(tally.arms) | set(tally.arms_converted)):
        found = s.get(ArmRollup, (care_model, step, arm, day), with_for_update=True) or ArmRollup(
            care_model=care_model, step=step, arm=arm, day=day)
        found.leads += tally.arms[(step, arm)]
        found.converted += tally.arms_converted[(step, arm)]
        s.add(found)


def journey_recorded(s: Session, new: list[JourneyRow]) -> None:
    """Call with the rows about to be added (not yet in the session), those already stored left out."""
    by_run: dict[str, list[JourneyRow]] = defaultdict(list)
    for row in sorted(new, key=lambda r: (r.enrolment, r.seq)):
        by_run[row.enrolment].append(row)
    for enrolment, rows in by_run.items():
        before = [visit(r) for r in s.exec(select(JourneyRow).where(col(JourneyRow.enrolment) == enrolment)
                                           .order_by(col(JourneyRow.seq)))]
        run = s.get(Enrolment, enrolment)
        add(s, rows[0].care_model, day_of(run), recorded(before, [visit(r) for r in rows]))
        if run is not None:
            run.at_version, run.at_step = rows[-1].version, rows[-1].step
            s.add(run)


def run_ended(s: Session, run: Enrolment) -> None:
    """Call once, as the run's status leaves 'running'."""
    visits = [visit(r) for r in s.exec(select(JourneyRow).where(col(JourneyRow.enrolment) == run.enrolment)
                                       .order_by(col(JourneyRow.seq)))]
    add(s, run.care_model, day_of(run), ended(visits, run.outcome.startswith("goal:")))


def rebuild(conn: Connection) -> None:
    """The totals from the history already recorded: for a database made before they were kept."""
    with Session(bind=conn) as s:
        runs = {e.enrolment: e for e in s.exec(select(Enrolment))}
        journeys: dict[str, list[JourneyRow]] = defaultdict(list)
        for row in s.exec(select(JourneyRow).order_by(col(JourneyRow.enrolment), col(JourneyRow.seq))):
            journeys[row.enrolment].append(row)
        totals: dict[tuple[str, str], Tally] = defaultdict(Tally)  # added up in memory, written once
        for enrolment, rows in journeys.items():
            run = runs.get(enrolment)
            tally = totals[(rows[0].care_model, day_of(run))]
            visits = [visit(r) for r in rows]
            merge(tally, recorded([], visits))
            if run is not None:
                run.at_version, run.at_step = rows[-1].version, rows[-1].step
                s.add(run)
                if run.status != "running":
                    merge(tally, ended(visits, run.outcome.startswith("goal:")))
        for (care_model, day), tally in totals.items():
            add(s, care_model, day, tally)
        for event in s.exec(select(EventRow).where(col(EventRow.type).in_(list(MESSAGE_MARKS)))):
            mark_message(s, event.type, event.data, event.at)
        s.commit()
