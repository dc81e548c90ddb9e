"""Reads and writes of the app's tables, each in one short transaction."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from engine.compiler import compile_document
from engine.document import CareModelDocument
from engine.lead import MAX_EVENTS, LeadEvent, LeadState
from engine.plan import plan_to_dict
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


def suppression_key(kind: str, value: str) -> str:
    """How an erased lead's address or id is remembered: a hash, never the value."""
    return hashlib.sha256(f"{kind}:{value.strip().lower()}".encode()).hexdigest()


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Queuing threads here beats its busy handler, which sleeps for up
        # to 100 ms between tries; PostgreSQL locks rows itself.
        self._serial = threading.RLock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()

    @classmethod
    def open(cls, url: str, auto_migrate: bool = True) -> Store:
        """The store at `url`; its schema brought up to date first, or (auto_migrate off) required to be."""
        engine = make_engine(url)
        if auto_migrate:
            migrate(engine)
        else:
            require_current(engine)
        return cls(engine)

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

    def erased(self, lead_id: str) -> bool:
        with self.session() as s:
            return s.get(Suppression, suppression_key("lead", lead_id)) is not None

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

    def record_event(self, event: LeadEvent, lead_id: str, deliveries: Sequence[DeliveryRow] = ()) -> bool:
        """Stores the event on the lead's timeline with what Temporal must be told of it, in one transaction.

        False when this event id was seen before: then nothing is written."""
        with self.session() as s:
            if s.get(EventRow, event.id) is not None:
                return False
            s.add(EventRow(id=event.id, lead_id=lead_id, type=event.type, at=event.at, data=event.data))
            s.add_all(deliveries)
            lead = s.get(Lead, lead_id)
            if lead is not None and event.type in ("lead.unsubscribed", "lead.resubscribed"):
                lead.unsubscribed = event.type == "lead.unsubscribed"
            if lead is not None and event.type == "email.bounced" and event.data.get("hard"):
                lead.bounced = True
            if lead is not None and event.type == "lead.updated":
                state = lead_state(lead)
                state.apply_update(event.data)
                if state.stage != lead.stage:  # the CRM's word, forward or back: kept in the history all the same
                    s.add(StageChange(lead_id=lead_id, from_stage=lead.stage, to_stage=state.stage, at=event.at,
                                      reason=str(event.data.get("why") or "set by lead.updated")))
                lead.attributes, lead.stage = dict(state.attributes), state.stage
                lead.fit, lead.engagement, lead.timezone = state.fit, state.engagement, state.timezone
                s.add(lead)
        return True

    def snapshot(self, lead_id: str) -> LeadState:
        """The lead as a new run starts with it: profile, scores and its recent timeline."""
        row = self.get_lead(lead_id)
        lead = lead_state(row) if row is not None else LeadState(id=lead_id)
        lead.events = [LeadEvent(e.id, e.type, e.at, e.data) for e in self.timeline(lead_id)[-MAX_EVENTS:]]
        return lead

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
                row.status, row.outcome, row.ended_at = "finished", outcome, at
                s.add(row)

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
        with self.session() as s:
            for row in rows:
                if s.get(JourneyRow, row.key) is None:
                    s.add(row)

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


def lead_state(row: Lead) -> LeadState:
    return LeadState(id=row.id, email=row.email, timezone=row.timezone, stage=row.stage, fit=row.fit,
                     engagement=row.engagement, attributes=dict(row.attributes))
