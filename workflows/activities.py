"""Every side effect of a run. Each is keyed so that Temporal's retries never repeat what already happened."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from connectors.base import (
    Connector,
    ConnectorError,
    MaybeDelivered,
    Message,
    RateLimited,
    Undeliverable,
    resend_is_safe,
)
from engine import links
from engine.content import ContentError, lead_context, render
from engine.lead import LeadEvent
from engine.steps import CrmPlan, EmailPlan, SocialPlan, WebhookPlan
from engine.tracking import compose_email
from store.outbox import Outbox, SendRules
from store.sales import LifecycleError, SalesStore
from store.store import Store
from store.tables import Handover, JourneyRow, Lead, OutboxRow, ScoreChangeRow
from workflows.enrolment import enrol
from workflows.ingest import stage_changed
from workflows.messages import (
    TASK_QUEUE,
    Delivery,
    DeliveryResult,
    EnrolmentEnd,
    HandoverClosed,
    HandoverOpened,
    HandoverRequest,
    JourneyBatch,
    MoveRequest,
    ScoreChange,
)

# A provider that refused this many attempts (each before anything could be delivered) gets no more: the delivery
# is recorded as failed, with the provider's last answer, and the lead moves on. With Temporal's back-off capped
# at five minutes, that is about twenty-five minutes of trying.
GIVE_UP_AFTER = 12


class Activities:
    def __init__(self, store: Store, connectors: dict[str, Connector], client: Client | None = None,
                 dry_run: bool = False, task_queue: str = TASK_QUEUE, public_url: str = "http://127.0.0.1:8000",
                 secret: bytes = b"nurture-development-secret") -> None:
        self.store = store
        self.sales = SalesStore(store)
        self.outbox = Outbox(store)
        self.connectors = connectors
        self.client = client
        self.dry_run = dry_run
        self.task_queue = task_queue
        self.public_url = public_url
        self.secret = secret

    # --- the outbox: at most one effect per key ------------------------------------------------------------

    def _once(self, key: str, lead_id: str, care_model: str, step: str, channel: str, at: float,
              message: Callable[[], Message], rules: SendRules | None) -> DeliveryResult:
        """Claims the key in the outbox (consent and caps checked on every attempt), sends, settles it."""
        try:
            built, problem = message(), ""
        except ContentError as exc:  # retrying cannot fix content: record why and let the lead move on
            built, problem = Message(key, channel, lead_id, ""), f"content error: {exc}"
        connector = self.connectors.get(channel)
        resend = connector is not None and resend_is_safe(connector)
        row, frees_at = self.outbox.claim(OutboxRow(
            key=key, lead_id=lead_id, care_model=care_model, step=step, channel=channel, status="sending",
            connector=getattr(connector, "name", ""), reason=problem, at=at,
            payload={"to": built.to, "subject": built.subject, "action": built.action}), rules, resend)
        if row.status != "sending":
            return DeliveryResult(row.status, row.reason, row.external_id, frees_at)
        try:
            receipt = self._connector(channel).send(built)
        except RateLimited as exc:  # nothing was sent: the next attempt may send
            self.outbox.release(key)
            raise ApplicationError(str(exc), type="RateLimited",
                                   next_retry_delay=timedelta(seconds=exc.retry_after)) from None
        except MaybeDelivered as exc:  # the row stays 'sending': the next attempt applies the channel's policy
            raise ApplicationError(str(exc), type="MaybeDelivered") from None
        except Undeliverable as exc:
            self.outbox.settle(key, "failed", "", str(exc))
            return DeliveryResult("failed", str(exc))
        except ConnectorError as exc:
            refused = self.outbox.refused(key, str(exc), GIVE_UP_AFTER)
            if refused is not None and refused.status == "failed":
                return DeliveryResult("failed", refused.reason)
            raise ApplicationError(str(exc), type="ConnectorError") from None
        self.outbox.settle(key, receipt.status, receipt.external_id, receipt.detail)
        return DeliveryResult(receipt.status, receipt.detail, receipt.external_id)

    def _connector(self, channel: str) -> Connector:
        if channel not in self.connectors:
            raise ApplicationError(f"no connector configured for channel '{channel}'", non_retryable=True)
        return self.connectors[channel]

    @activity.defn(name="deliver")
    def deliver(self, d: Delivery) -> DeliveryResult:
        return self._once(d.key, d.lead.id, d.care_model, d.step, d.step_spec.kind, d.at, lambda: self._message(d),
                          SendRules(d.frequency_cap))

    def _message(self, d: Delivery) -> Message:
        step, context, where = d.step_spec, lead_context(d.lead), f"step {d.step}"
        match step:
            case EmailPlan():
                html, text, headers = compose_email(render(step.body, context, where), d.key, d.lead.id,
                                                    self.public_url, self.secret)
                subject = render(step.subject, context, where, html=False)
                return Message(d.key, step.kind, d.lead.id, d.lead.email, subject, html, "send", text=text,
                               headers=headers)
            case SocialPlan():
                return Message(d.key, step.kind, d.lead.id, str(d.lead.attributes.get("linkedin", "")),
                               body=render(step.message, context, where, html=False), action=step.action,
                               payload={"post": d.lead.attributes.get("linkedin_post")})
            case CrmPlan():
                fields = {"field": step.field, "value": step.value, "stage": step.stage, "text": step.text}
                return Message(d.key, step.kind, d.lead.id, d.lead.email, action=step.action, payload={
                    "email": d.lead.email, **{k: v for k, v in fields.items() if v is not None}})
            case WebhookPlan():
                return Message(d.key, step.kind, d.lead.id, step.url, action="post",
                               payload={"lead": context["lead"], **step.payload})

    # --- scores, journey, enrolments -----------------------------------------------------------------------

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

    @activity.defn(name="move_lead")
    async def move_lead(self, m: MoveRequest) -> str:
        version = self.store.latest(m.to_model)
        if version is None and self.dry_run:
            return f"would move to '{m.to_model}' (give its document too, to follow the lead there)"
        if version is None or self.client is None:
            return f"care model '{m.to_model}' is not published; lead not moved"
        moved = await enrol(self.client, self.store, version, self.store.snapshot(m.lead.id),
                            task_queue=self.task_queue)
        return f"{moved.status} {moved.reason}".strip()

    @activity.defn(name="finish_enrolment")
    def finish_enrolment(self, e: EnrolmentEnd) -> None:
        self.store.enrolment_finished(e.enrolment, e.outcome, e.at)

    # --- the sales handover --------------------------------------------------------------------------------

    @activity.defn(name="open_handover")
    def open_handover(self, h: HandoverRequest) -> HandoverOpened:
        """Routes to a rep, records the handover, creates the CRM task and tells the rep. Each part once."""
        if self.sales.handover(h.key) is None:
            lead = self.store.get_lead(h.lead_id) or Lead(id=h.lead_id)
            rep, how = self.sales.route(h.team, h.routing, lead)
            self.sales.open_handover(Handover(
                key=h.key, lead_id=h.lead_id, care_model=h.care_model, step=h.step, team=h.team, routing=h.routing,
                note=h.note, opened_at=h.at, due_at=h.due, rep_id=rep.id if rep else "", routed_by=how))
        handover, rep = self.sales.handover_and_rep(h.key)
        due = datetime.fromtimestamp(h.due, UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = f"Follow up lead {h.lead_id} ({h.care_model}): accept or reject by {due}. {h.note}".strip()
        self._internal(handover, h.at, Message(f"{h.key}/task", "crm", h.lead_id, "", action="create_task",
                                               payload={"text": text, "owner": rep.id if rep else ""}))
        if rep is not None:
            # Signed for this rep and handover, expiring, and good for one sign-in.
            inbox = f"{self.public_url.rstrip('/')}/inbox/link/{links.make(self.secret, 'rep', r=rep.id, h=h.key)}"
            self._internal(handover, h.at, Message(
                f"{h.key}/notify", "email", h.lead_id, rep.email, f"New lead for you: {h.lead_id}",
                f"<p>{text}</p><p><a href=\"{inbox}\">Open your inbox</a></p>", "send",
                text=f"{text}\n\nOpen your inbox: {inbox}\n"))
        return HandoverOpened(handover.rep_id, handover.routed_by)

    def _internal(self, handover: Handover, at: float, message: Message) -> None:
        """Messages to our own people: no consent or caps, but still at most once per key."""
        self._once(message.key, message.lead_id, handover.care_model, handover.step, message.channel, at,
                   lambda: message, None)

    @activity.defn(name="close_handover")
    async def close_handover(self, h: HandoverClosed) -> str:
        """Records the outcome and moves the lead's stage for a decision (itself an event, so care models
        listening for it start); returns the lead's stage now, so the run's copy of the lead follows."""
        row, move = await asyncio.to_thread(self._close, h)  # database and escalation emails block
        if row is None:
            return ""
        if move is not None:
            old, new, why = move
            cause = LeadEvent(f"{h.key}/{h.outcome}", f"handover.{h.outcome}", h.at)
            await stage_changed(self.client, self.store, row.lead_id, cause, old, new, why, self.task_queue)
        lead = self.store.get_lead(row.lead_id)
        return lead.stage if lead else ""

    def _close(self, h: HandoverClosed) -> tuple[Handover | None, tuple[str, str, str] | None]:
        row = self.sales.close_handover(h.key, h.outcome, h.reason, h.at)
        if row is None:
            return None, None
        if h.outcome == "expired":
            for manager in self.sales.managers(row.team):
                self._internal(row, h.at, Message(
                    f"{h.key}/escalate/{manager.id}", "email", row.lead_id, manager.email,
                    f"Handover SLA missed: {row.lead_id}",
                    f"<p>No one accepted or rejected lead {row.lead_id} (rep {row.rep_id or 'unassigned'}) "
                    f"in time.</p>", "send", text=f"No decision on lead {row.lead_id} in time.\n"))
        moves = {"accepted": ("sal", f"handover accepted: {h.reason}"),
                 "rejected": ("prospect", f"recycled by sales: {h.reason}")}
        if h.outcome not in moves:
            return row, None
        new, why = moves[h.outcome]
        lead = self.store.get_lead(row.lead_id)
        try:
            moved = self.sales.set_stage(row.lead_id, new, why, h.at, recycle=h.outcome == "rejected")
        except LifecycleError:
            return row, None  # a lead already further along (say, a customer) keeps its stage
        return row, ((lead.stage if lead else ""), new, why) if moved else None

    def all(self) -> list[Any]:
        return [self.deliver, self.adjust_score, self.record_journey, self.open_handover, self.close_handover,
                self.move_lead, self.finish_enrolment]

