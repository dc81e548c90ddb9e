"""Every side effect of a run. Each is keyed so that Temporal's retries never repeat what already happened."""

from __future__ import annotations

from typing import Any

from sqlmodel import func, select
from temporalio import activity
from temporalio.client import Client

from connectors.base import Connector, Message
from engine.content import ContentError, lead_context, render
from engine.durations import format_duration
from nurture.store import Store
from nurture.tables import Enrolment, Handover, JourneyRow, Lead, OutboxRow, ScoreChangeRow
from workflows.messages import (
    TASK_QUEUE,
    Delivery,
    DeliveryResult,
    EnrolmentEnd,
    HandoverClosed,
    HandoverRequest,
    JourneyBatch,
    MoveRequest,
    ScoreChange,
)

# Channels that reach the lead themselves: consent and frequency caps apply to these.
CONSENTED_CHANNELS = frozenset({"email", "social"})
DONE = frozenset({"sent", "dry_run", "skipped"})


class Activities:
    def __init__(self, store: Store, connectors: dict[str, Connector], client: Client | None = None,
                 dry_run: bool = False, task_queue: str = TASK_QUEUE) -> None:
        self.store = store
        self.connectors = connectors
        self.client = client
        self.dry_run = dry_run
        self.task_queue = task_queue

    @activity.defn(name="deliver")
    def deliver(self, d: Delivery) -> DeliveryResult:
        spec = d.step_spec
        channel = spec["kind"]
        claimed = self._claim(d, channel)
        if isinstance(claimed, DeliveryResult):
            return claimed
        receipt = self._connector(channel).send(claimed)
        with self.store.session() as s:
            row = s.get(OutboxRow, d.key)
            row.status, row.external_id, row.reason = receipt.status, receipt.external_id, receipt.detail
            s.add(row)
        return DeliveryResult(receipt.status, receipt.detail, receipt.external_id)

    def _claim(self, d: Delivery, channel: str) -> Message | DeliveryResult:
        """Inside one write transaction: the outbox row decides whether this effect may go out at all."""
        with self.store.session() as s:
            row = s.get(OutboxRow, d.key)
            if row is not None and row.status in DONE:
                return DeliveryResult(row.status, row.reason, row.external_id)
            # Row lock on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises): no two runs of one lead
            # can both read the cap as not yet reached.
            lead = s.get(Lead, d.lead.id, with_for_update=True) if row is None else None
            reason = self._blocked(s, d, channel, lead) if row is None else ""
            try:
                message = self._message(d, channel)
            except ContentError as exc:  # retrying cannot fix content: record why and let the lead move on
                message, reason = Message(d.key, channel, d.lead.id, ""), f"content error: {exc}"
            if row is None:
                row = OutboxRow(key=d.key, lead_id=d.lead.id, care_model=d.care_model, step=d.step,
                                channel=channel, connector=d.step_spec["connector"],
                                status="skipped" if reason else "sending", reason=reason, at=d.at,
                                payload={"to": message.to, "subject": message.subject, "action": message.action})
                s.add(row)
            if reason:
                return DeliveryResult("skipped", reason)
        return message

    def _blocked(self, s: Any, d: Delivery, channel: str, lead: Any) -> str:
        if channel not in CONSENTED_CHANNELS:
            return ""
        if lead is not None and lead.unsubscribed:
            return "lead has unsubscribed"
        cap = d.frequency_cap
        if cap and channel in cap["channels"]:
            since = d.at - cap["per_seconds"]
            sent = s.exec(select(func.count()).select_from(OutboxRow).where(
                OutboxRow.lead_id == d.lead.id, OutboxRow.channel.in_(cap["channels"]),
                OutboxRow.status.in_(("sent", "dry_run", "sending")), OutboxRow.at > since,
            )).one()
            if sent >= cap["max"]:
                return f"frequency cap: {sent} of {cap['max']} per {format_duration(cap['per_seconds'])} used"
        return ""

    def _message(self, d: Delivery, channel: str) -> Message:
        spec, context = d.step_spec, lead_context(d.lead)
        where = f"step {d.step}"
        match channel:
            case "email":
                return Message(d.key, channel, d.lead.id, d.lead.email,
                               render(spec["subject"], context, where, html=False),
                               render(spec["body"], context, where), "send")
            case "social":
                return Message(d.key, channel, d.lead.id, d.lead.attributes.get("linkedin", d.lead.id),
                               body=render(spec["message"], context, where, html=False), action=spec["action"])
            case "crm":
                return Message(d.key, channel, d.lead.id, d.lead.id, action=spec["action"], payload={
                    k: spec[k] for k in ("field", "value", "stage", "text") if spec.get(k) is not None})
            case _:
                return Message(d.key, channel, d.lead.id, spec["url"], action="post",
                               payload={"lead": context["lead"], **spec["payload"]})

    def _connector(self, channel: str) -> Connector:
        if channel not in self.connectors:
            raise LookupError(f"no connector configured for channel '{channel}'")
        return self.connectors[channel]

    @activity.defn(name="adjust_score")
    def adjust_score(self, c: ScoreChange) -> bool:
        return self.store.add_score_change(ScoreChangeRow(key=c.key, lead_id=c.lead_id, score=c.score,
                                                          delta=c.delta, reason=c.reason, at=c.at))

    @activity.defn(name="record_journey")
    def record_journey(self, b: JourneyBatch) -> None:
        self.store.add_journey([
            JourneyRow(key=f"{b.enrolment}/{e.seq}", enrolment=b.enrolment, lead_id=b.lead_id,
                       care_model=b.care_model, version=b.version, seq=e.seq, step=e.step, kind=e.kind, at=e.at,
                       outcome=e.outcome, why=e.why)
            for e in b.entries
        ])

    @activity.defn(name="open_handover")
    def open_handover(self, h: HandoverRequest) -> None:
        with self.store.session() as s:
            if s.get(Handover, h.key) is None:
                s.add(Handover(key=h.key, lead_id=h.lead_id, care_model=h.care_model, step=h.step, team=h.team,
                               routing=h.routing, note=h.note, opened_at=h.at, due_at=h.due))

    @activity.defn(name="close_handover")
    def close_handover(self, h: HandoverClosed) -> None:
        with self.store.session() as s:
            row = s.get(Handover, h.key)
            if row is not None and row.status == "open":
                row.status, row.reason, row.closed_at = h.outcome, h.reason, h.at
                s.add(row)

    @activity.defn(name="move_lead")
    async def move_lead(self, m: MoveRequest) -> str:
        from workflows.client import enrol, snapshot  # the client imports this module

        if self.dry_run or self.client is None:
            return "dry run: not enrolled"
        version = self.store.latest(m.to_model)
        if version is None:
            return f"care model '{m.to_model}' is not published; lead not moved"
        moved = await enrol(self.client, self.store, version, snapshot(self.store, m.lead.id),
                            task_queue=self.task_queue)
        return f"{moved.status} {moved.reason}".strip()

    @activity.defn(name="finish_enrolment")
    def finish_enrolment(self, e: EnrolmentEnd) -> None:
        self.store.enrolment_finished(e.enrolment, e.outcome, e.at)

    def all(self) -> list[Any]:
        return [self.deliver, self.adjust_score, self.record_journey, self.open_handover, self.close_handover,
                self.move_lead, self.finish_enrolment]


def enrolment_row(workflow_id: str, enrolment: str, care_model: str, version: int, lead_id: str) -> Enrolment:
    return Enrolment(enrolment=enrolment, workflow_id=workflow_id, care_model=care_model, version=version,
                     lead_id=lead_id)
