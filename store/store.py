"""Reads and writes of the app's tables, each in one short transaction."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from engine.compiler import compile_document
from engine.document import CareModelDocument
from engine.lead import MAX_EVENTS, LeadEvent, LeadState
from engine.plan import plan_to_dict
from store import rollups
from store.db import make_engine, migrate, require_current
from store.tables import (
    CareModelVersion,
    DeliveryRow,
    Draft,
    Enrolment,
    EventRow,
    Handover,
    JourneyRow,
    Lead,
    LeadAlias,
    OutboxRow,
    ScoreChangeRow,
    StageChange,
    Suppression,
)

T = TypeVar("T")
# How stale this process's view of published configuration may be when another process publishes.
CONFIG_SECONDS = 2.0


def suppression_key(kind: str, value: str) -> str:
    """How an erased lead's address or id is remembered: a hash, never the value."""
    return hashlib.sha256(f"{kind}:{value.strip().lower()}".encode()).hexdigest()


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Queuing threads here beats its busy handler, which sleeps for up
        # to 100 ms between tries; PostgreSQL locks rows itself.
        self._serial = threading.RLock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        self._settled: dict[str, tuple[float, Any]] = {}

    @classmethod
    def open(cls, url: str, auto_migrate: bool = True) -> Store:
        """The store at `url`; its schema brought up to date first, or (auto_migrate off) required to be."""
        engine = make_engine(url)
        if auto_migrate:
            migrate(engine)
        else:
            require_current(engine)
        return cls(engine)

    def settled(self, name: str, read: Callable[[], T]) -> T:
        """What changes only when someone publishes (care models, the scoring model, segments), read at most once
        per CONFIG_SECONDS. This process forgets it at once when it makes such a change (`changed`); others, within
        CONFIG_SECONDS."""
        now = time.monotonic()
        found = self._settled.get(name)
        if found is None or found[0] < now:
            found = (now + CONFIG_SECONDS, read())
            self._settled[name] = found
        return found[1]

    def changed(self) -> None:
        self._settled.clear()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._serial, Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def engaged_lead_ids(self) -> list[str]:
        with self.session() as s:
            return list(s.exec(select(col(Lead.id)).where(col(Lead.engagement) != 0)))

    def ping(self) -> None:
        with self.session() as s:
            s.exec(select(1)).one()

    # --- care models -------------------------------------------------------------------------------

    def publish(self, doc: CareModelDocument, also_known: set[str] | frozenset[str] = frozenset()) -> CareModelVersion:
        """A new immutable version; publishing an unchanged document returns the current one. `also_known`: care
        models a move may name without being published here (a simulation that does not follow the lead there)."""
        known = {m.care_model for m in self.latest_versions()} | {doc.id} | set(also_known)
        with self.session() as s:
            latest = s.exec(select(CareModelVersion).where(col(CareModelVersion.care_model) == doc.id)
                            .order_by(col(CareModelVersion.version).desc())).first()
            number = (latest.version if latest else 0) + 1
            plan = compile_document(doc, number, known)
            if latest is not None and latest.hash == plan.hash:
                return latest
            row = CareModelVersion(care_model=doc.id, version=number, name=doc.name, hash=plan.hash,
                                   document=doc.model_dump(mode="json"), plan=plan_to_dict(plan))
            s.add(row)
        self.changed()
        return row

    def latest(self, care_model: str) -> CareModelVersion | None:
        with self.session() as s:
            return s.exec(select(CareModelVersion).where(col(CareModelVersion.care_model) == care_model)
                          .order_by(col(CareModelVersion.version).desc())).first()

    def version(self, care_model: str, version: int) -> CareModelVersion | None:
        with self.session() as s:
            return s.exec(select(CareModelVersion).where(col(CareModelVersion.care_model) == care_model,
                                                         col(CareModelVersion.version) == version)).first()

    def archived(self) -> set[str]:
        """Care models a marketer archived: they take no new leads; leads already in them carry on."""
        with self.session() as s:
            return set(s.exec(select(Draft.care_model).where(col(Draft.archived_at).is_not(None))))

    def latest_versions(self) -> list[CareModelVersion]:
        with self.session() as s:
            newest = (select(col(CareModelVersion.care_model), func.max(col(CareModelVersion.version)).label("v"))
                      .group_by(col(CareModelVersion.care_model)).subquery())
            query = select(CareModelVersion).join(
                newest, (col(CareModelVersion.care_model) == newest.c.care_model)
                & (col(CareModelVersion.version) == newest.c.v)).order_by(col(CareModelVersion.care_model))
            return list(s.exec(query))

    # --- leads and their timeline ------------------------------------------------------------------

    def upsert_lead(self, lead: LeadState, unsubscribed: bool | None = None) -> Lead:
        with self.session() as s:
            row = s.get(Lead, lead.id) or Lead(id=lead.id)
            row.email, row.timezone, row.stage = lead.email, lead.timezone, lead.stage
            row.fit, row.engagement, row.attributes = lead.fit, lead.engagement, dict(lead.attributes)
            if unsubscribed is not None:
                row.unsubscribed = unsubscribed
            if lead.email and s.get(Suppression, suppression_key("email", lead.email)) is not None:
                row.unsubscribed = True  # an erased lead's address, imported again: never emailed
            s.add(row)
        return row

    def add_new_leads(self, leads: Sequence[tuple[LeadState, bool]]) -> set[str]:
        """Creates, in one transaction, those of these (lead, unsubscribed) that do not exist yet; their ids.
        An address an erased lead had is created unsubscribed, as `upsert_lead` does."""
        with self.session() as s:
            ids = [lead.id for lead, _ in leads]
            known = set(s.exec(select(col(Lead.id)).where(col(Lead.id).in_(ids))))
            hashes = {suppression_key("email", lead.email) for lead, _ in leads if lead.email}
            erased = set(s.exec(select(col(Suppression.hash)).where(col(Suppression.hash).in_(hashes))))
            fresh = [(lead, unsubscribed) for lead, unsubscribed in leads if lead.id not in known]
            s.add_all(Lead(id=lead.id, email=lead.email, timezone=lead.timezone, stage=lead.stage, fit=lead.fit,
                           engagement=lead.engagement, attributes=dict(lead.attributes),
                           unsubscribed=unsubscribed or (bool(lead.email) and suppression_key("email", lead.email)
                           in erased)) for lead, unsubscribed in fresh)
        return {lead.id for lead, _ in fresh}

    def resolved(self, lead_ids: Sequence[str]) -> dict[str, str]:
        """Each id as `resolve` gives it, erased leads left out, in one read."""
        with self.session() as s:
            aliases = dict(s.exec(select(col(LeadAlias.alias), col(LeadAlias.lead_id))
                                  .where(col(LeadAlias.alias).in_(lead_ids))).all())
            hashes = {suppression_key("lead", i): i for i in lead_ids}
            gone = {hashes[h] for h in s.exec(select(col(Suppression.hash)).where(col(Suppression.hash).in_(hashes)))}
        return {i: aliases.get(i, i) for i in lead_ids if i not in gone}

    def resolve(self, lead_id: str) -> str:
        """The lead an id now means: itself, or the lead it was merged into."""
        with self.session() as s:
            alias = s.get(LeadAlias, lead_id)
            return alias.lead_id if alias is not None else lead_id

    def get_lead(self, lead_id: str) -> Lead | None:
        with self.session() as s:
            return s.get(Lead, lead_id)

    def event(self, event_id: str) -> EventRow | None:
        with self.session() as s:
            return s.get(EventRow, event_id)

    def record_events(self, batch: Sequence[tuple[str, LeadEvent]],
                      deliveries_for: Callable[[str, LeadEvent, list[str]], list[DeliveryRow]]) -> list[bool]:
        """Stores events on their leads' timelines with what Temporal must be told of each, in one transaction:
        a lead met for the first time is created, an event id seen before (here or earlier in the batch) is
        skipped. `deliveries_for(lead, event, running)` says what Temporal must be told, given the lead's running
        workflow ids. Whether each event was new."""
        lead_ids = sorted({lead_id for lead_id, _ in batch})
        with self.session() as s:
            seen = set(s.exec(select(col(EventRow.id)).where(col(EventRow.id).in_([e.id for _, e in batch]))))
            leads = {row.id: row for row in s.exec(select(Lead).where(col(Lead.id).in_(lead_ids)))}
            running: dict[str, list[str]] = {}
            for lead_id, wid in s.exec(select(col(Enrolment.lead_id), col(Enrolment.workflow_id)).where(
                    col(Enrolment.lead_id).in_(lead_ids), col(Enrolment.status) == "running")):
                running.setdefault(lead_id, []).append(wid)
            new = []
            for lead_id, event in batch:
                if event.id in seen:
                    new.append(False)
                    continue
                seen.add(event.id)
                if lead_id not in leads:
                    email = str(event.data.get("email", ""))
                    leads[lead_id] = Lead(id=lead_id, email=email, unsubscribed=bool(email) and s.get(
                        Suppression, suppression_key("email", email)) is not None)
                    s.add(leads[lead_id])
                    s.flush()
                s.add(EventRow(id=event.id, lead_id=lead_id, type=event.type, at=event.at, data=event.data))
                s.add_all(deliveries_for(lead_id, event, sorted(running.get(lead_id, []))))
                _apply(s, leads[lead_id], event)
                new.append(True)
        return new

    def snapshot(self, lead_id: str) -> LeadState:
        """The lead as a new run starts with it: profile, scores and its recent timeline."""
        return self.snapshots([lead_id])[lead_id]

    def snapshots(self, lead_ids: Sequence[str]) -> dict[str, LeadState]:
        """`snapshot` of many leads in one read: each with its newest MAX_EVENTS events, oldest first."""
        newest = (select(EventRow, func.row_number().over(partition_by=col(EventRow.lead_id),
                                                           order_by=col(EventRow.at).desc()).label("n"))
                  .where(col(EventRow.lead_id).in_(lead_ids)).subquery())
        recent = aliased(EventRow, newest)
        with self.session() as s:
            found = {row.id: lead_state(row) for row in s.exec(select(Lead).where(col(Lead.id).in_(lead_ids)))}
            out = {lead_id: found.get(lead_id) or LeadState(id=lead_id) for lead_id in lead_ids}
            for e in s.exec(select(recent).where(newest.c.n <= MAX_EVENTS).order_by(newest.c.at)):
                out[e.lead_id].events.append(LeadEvent(e.id, e.type, e.at, e.data))
        return out

    def event_types(self) -> set[str]:
        """Every event type that has reached a lead's timeline."""
        with self.session() as s:
            return set(s.exec(select(EventRow.type).distinct()))

    def lead_id_by_email(self, email: str) -> str | None:
        """The id of the lead with this address (the oldest, should there be several), or None."""
        with self.session() as s:
            return s.exec(select(Lead.id).where(func.lower(col(Lead.email)) == email.strip().lower())
                          .order_by(col(Lead.created_at))).first()

    def suppressed(self, email: str) -> bool:
        """Whether an address must never be emailed: a lead with it unsubscribed, or an erased lead's."""
        with self.session() as s:
            if s.get(Suppression, suppression_key("email", email)) is not None:
                return True
            return s.exec(select(Lead.id).where(func.lower(col(Lead.email)) == email.strip().lower(),
                                                col(Lead.unsubscribed).is_(True))).first() is not None

    def attribute_names(self, sample: int = 500) -> list[str]:
        """Attribute names on the most recently changed leads: what the condition builder suggests."""
        with self.session() as s:
            rows = s.exec(select(Lead.attributes).order_by(col(Lead.created_at).desc()).limit(sample)).all()
        return sorted({name for attributes in rows for name in (attributes or {})})

    def timeline(self, lead_id: str) -> list[EventRow]:
        with self.session() as s:
            return list(s.exec(select(EventRow).where(col(EventRow.lead_id) == lead_id).order_by(col(EventRow.at))))

    # --- enrolments --------------------------------------------------------------------------------

    def enrolment_started(self, workflow_id: str, enrolment: str, care_model: str, version: int,
                          lead_id: str) -> None:
        with self.session() as s:
            if s.get(Enrolment, enrolment) is None:
                s.add(Enrolment(enrolment=enrolment, workflow_id=workflow_id, care_model=care_model, version=version,
                                lead_id=lead_id))

    def enrolment_finished(self, enrolment: str, outcome: str, at: float) -> None:
        with self.session() as s:
            row = s.get(Enrolment, enrolment)
            if row is not None:
                ending = row.status == "running"
                row.status, row.outcome, row.ended_at = "finished", outcome, at
                s.add(row)
                if ending:
                    rollups.run_ended(s, row)

    def enrolment_moved(self, enrolment: str, version: int) -> None:
        with self.session() as s:
            row = s.get(Enrolment, enrolment)
            if row is not None:
                row.version = version
                s.add(row)

    def enrolments(self, lead_id: str | None = None, care_model: str | None = None,
                   running: bool | None = None) -> list[Enrolment]:
        query = select(Enrolment)
        if lead_id is not None:
            query = query.where(col(Enrolment.lead_id) == lead_id)
        if care_model is not None:
            query = query.where(col(Enrolment.care_model) == care_model)
        if running is not None:
            query = query.where((col(Enrolment.status) == "running") == running)
        with self.session() as s:
            return list(s.exec(query.order_by(col(Enrolment.started_at))))

    # --- what the runs did -------------------------------------------------------------------------

    def add_journey(self, rows: list[JourneyRow]) -> None:
        """Records steps once per key (a retried activity adds nothing), and the report's totals with them."""
        with self.session() as s:
            new = [row for row in rows if s.get(JourneyRow, row.key) is None]
            rollups.journey_recorded(s, new)
            s.add_all(new)

    def journey(self, lead_id: str | None = None, enrolment: str | None = None) -> list[JourneyRow]:
        query = select(JourneyRow)
        if lead_id is not None:
            query = query.where(col(JourneyRow.lead_id) == lead_id)
        if enrolment is not None:
            query = query.where(col(JourneyRow.enrolment) == enrolment)
        with self.session() as s:
            return list(s.exec(query.order_by(col(JourneyRow.at), col(JourneyRow.seq))))

    def outbox(self, lead_id: str | None = None) -> list[OutboxRow]:
        query = select(OutboxRow) if lead_id is None else select(OutboxRow).where(col(OutboxRow.lead_id) == lead_id)
        with self.session() as s:
            return list(s.exec(query.order_by(col(OutboxRow.at))))

    def add_score_change(self, row: ScoreChangeRow) -> bool:
        with self.session() as s:
            if s.get(ScoreChangeRow, row.key) is not None:
                return False
            s.add(row)
            lead = s.get(Lead, row.lead_id)
            if lead is not None:
                setattr(lead, row.score, getattr(lead, row.score) + row.delta)
                s.add(lead)
        return True

    def handovers(self, status: str | None = None) -> list[Handover]:
        query = select(Handover) if status is None else select(Handover).where(col(Handover.status) == status)
        with self.session() as s:
            return list(s.exec(query.order_by(col(Handover.opened_at))))


def _apply(s: Session, lead: Lead | None, event: LeadEvent) -> None:
    """What an event changes on the lead's row: consent, a hard bounce, an update from the CRM or the scorer; and
    on the message it names, the first open, click or unsubscribe."""
    rollups.mark_message(s, event.type, event.data, event.at)
    if lead is None:
        return
    if event.type in ("lead.unsubscribed", "lead.resubscribed"):
        lead.unsubscribed = event.type == "lead.unsubscribed"
    if event.type == "email.bounced" and event.data.get("hard"):
        lead.bounced = True
    if event.type == "lead.updated":
        state = lead_state(lead)
        state.apply_update(event.data)
        if state.stage != lead.stage:  # the CRM's word, forward or back: kept in the history all the same
            s.add(StageChange(lead_id=lead.id, from_stage=lead.stage, to_stage=state.stage, at=event.at,
                              reason=str(event.data.get("why") or "set by lead.updated")))
        lead.attributes, lead.stage = dict(state.attributes), state.stage
        lead.fit, lead.engagement, lead.timezone = state.fit, state.engagement, state.timezone
    s.add(lead)


def lead_state(row: Lead) -> LeadState:
    return LeadState(id=row.id, email=row.email, timezone=row.timezone, stage=row.stage, fit=row.fit,
                     engagement=row.engagement, attributes=dict(row.attributes))
