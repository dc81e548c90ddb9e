"""An event arrived: record it with everything Temporal must be told of it, rescore, then tell Temporal.

The event and its deliveries (a signal per running run, an enrolment per matching entry rule) are written in one
transaction, so an accepted event is never forgotten; a delivery is marked done only once Temporal has taken it.
What Temporal could not take stays pending, in order per lead, for the next attempt: the redelivery loop, or the
same event posted again. Every API route, the inbox, tracking, inbound webhooks and jobs come through here."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from engine.conditions import event_matches
from engine.lead import LeadEvent, LeadState
from engine.plan import entry_of, plan_from_dict
from engine.segments import JOINED, LEFT
from store.deliveries import Deliveries
from store.scores import rescore
from store.segments import Segments
from store.store import Store
from store.tables import DeliveryRow
from workflows.enrolment import enrol
from workflows.messages import TASK_QUEUE, Migration, workflow_id

# How long one attempt may wait for Temporal before the delivery is left to the redelivery loop.
ATTEMPT_SECONDS = 2.0


@dataclass
class Ingested:
    new: bool
    signalled: list[str] = field(default_factory=list)
    enrolled: list[str] = field(default_factory=list)
    staged: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # what Temporal has not taken yet; retried until it does

    def merge(self, other: Ingested) -> None:
        for mine, theirs in ((self.signalled, other.signalled), (self.enrolled, other.enrolled),
                             (self.staged, other.staged), (self.pending, other.pending)):
            mine.extend(x for x in theirs if x not in mine)


def signal_row(event: LeadEvent, lead_id: str, wid: str) -> DeliveryRow:
    return DeliveryRow(key=f"{event.id}>{wid}", lead_id=lead_id, kind="signal", workflow_id=wid,
                       event=asdict(event), created_at=event.at)


def enrol_row(key: str, lead_id: str, care_model: str, trigger: LeadEvent | None, at: float) -> DeliveryRow:
    return DeliveryRow(key=key, lead_id=lead_id, kind="enrol", care_model=care_model,
                       workflow_id=workflow_id(care_model, lead_id), event=asdict(trigger) if trigger else None,
                       created_at=at)


def targets(store: Store, lead_id: str, event: LeadEvent) -> list[DeliveryRow]:
    """Whom this event concerns: care models whose entry rule it matches, and the lead's running runs."""
    entered = [version for version in store.latest_versions()
               if (entry := entry_of(version.plan)) and entry.event
               and event_matches(event.type, event.data, entry.event, entry.where)]
    archived = store.archived() if entered else set()  # asked only when the event would enrol someone
    rows = []
    for version in entered:
        if version.care_model not in archived:
            rows.append(enrol_row(f"{event.id}>enrol/{version.care_model}", lead_id, version.care_model, event,
                                  event.at))
    starting = {r.workflow_id for r in rows}  # signal-with-start hands them the event already
    running = {e.workflow_id for e in store.enrolments(lead_id=lead_id, running=True)} - starting
    return rows + [signal_row(event, lead_id, wid) for wid in sorted(running)]


async def ingest(client: Client | None, store: Store, lead_id: str, event: LeadEvent,
                 task_queue: str = TASK_QUEUE, attempt_seconds: float = ATTEMPT_SECONDS) -> Ingested:
    """Records the event (once per id), rescores, and delivers what is pending for the lead.

    `client` None means Temporal is out of reach: the event is still accepted, its deliveries wait. An event about
    an erased lead (a click on an old email, say) is dropped: nothing about it is kept."""
    if store.erased(lead_id):
        return Ingested(new=False)
    lead_id = store.resolve(lead_id)  # a click on an email sent before two leads were merged
    before = store.get_lead(lead_id) or store.upsert_lead(LeadState(id=lead_id, email=str(event.data.get("email", ""))))
    result = Ingested(new=store.record_event(event, lead_id, targets(store, lead_id, event)))
    after = store.get_lead(lead_id)
    if result.new and after is not None and after.stage != before.stage:
        result.merge(await stage_changed(client, store, lead_id, event, before.stage, after.stage,
                                         str(event.data.get("why") or event.type), task_queue, attempt_seconds))
    if result.new:
        await _rescore(client, store, lead_id, event, task_queue, attempt_seconds, result)
    if result.new and event.type not in (JOINED, LEFT):
        await _segments(client, store, lead_id, event, task_queue, attempt_seconds, result)
    result.merge(await deliver_pending(client, store, lead_id, task_queue, attempt_seconds))
    return result


NOT_INTEREST = frozenset({"lead.stage_changed", "handover.accepted", "handover.rejected", "handover.expired"})


async def _rescore(client: Client | None, store: Store, lead_id: str, event: LeadEvent, task_queue: str,
                   attempt_seconds: float, result: Ingested) -> None:
    lead = store.snapshot(lead_id)
    # A stage change or a sales decision is not a sign of interest: a lead sales recycled waits for new engagement
    # before a threshold moves it again, instead of bouncing straight back to MQL on its old score.
    rescored = rescore(store, lead, event.at, thresholds=event.type not in NOT_INTEREST)
    if rescored is None or not (rescored.changed or rescored.moves):
        return
    queue_for_runs(store, lead_id, LeadEvent(f"{event.id}/scores", "lead.updated", event.at,
                                             {"fit": lead.fit, "engagement": lead.engagement, "stage": lead.stage}))
    for old, new, why, models in rescored.moves:
        result.merge(await stage_changed(client, store, lead_id, event, old, new, why, task_queue, attempt_seconds))
        key = f"{event.id}/stage/{new}"
        Deliveries(store).add([enrol_row(f"{key}>enrol/{m}", lead_id, m, None, event.at) for m in models])


async def _segments(client: Client | None, store: Store, lead_id: str, event: LeadEvent, task_queue: str,
                    attempt_seconds: float, result: Ingested) -> None:
    """Joining or leaving a segment is an event of its own, so `entry: {event: segment.joined, where: {segment: X}}`
    starts a care model when a lead comes to match X; its id derives from the cause, so a retry records it once."""
    changes = Segments(store).place(lead_id, event.at)
    for kind, segments in ((JOINED, changes.joined), (LEFT, changes.left)):
        for segment in segments:
            moved = LeadEvent(f"{event.id}/{kind}/{segment}", kind, event.at, {"segment": segment})
            result.merge(await ingest(client, store, lead_id, moved, task_queue, attempt_seconds))


async def stage_changed(client: Client | None, store: Store, lead_id: str, cause: LeadEvent, old: str, new: str,
                        why: str, task_queue: str = TASK_QUEUE, attempt_seconds: float = ATTEMPT_SECONDS) -> Ingested:
    """A stage change, whoever made it (a threshold, sales, the CRM), is itself an event: on the timeline, told to
    the lead's runs, and able to start the care models that listen for it (`entry: {event: lead.stage_changed,
    where: {to: sal}}`). Its id derives from its cause, so a retried cause records it once."""
    moved = LeadEvent(f"{cause.id}/stage/{new}", "lead.stage_changed", cause.at, {"from": old, "to": new, "why": why})
    result = await ingest(client, store, lead_id, moved, task_queue, attempt_seconds)
    result.staged.append(new)
    return result


def queue_for_runs(store: Store, lead_id: str, event: LeadEvent) -> None:
    """Queues a derived event (new scores, say) for the lead's running runs; not kept on its timeline."""
    running = store.enrolments(lead_id=lead_id, running=True)
    Deliveries(store).add([signal_row(event, lead_id, e.workflow_id) for e in running])


async def deliver_pending(client: Client | None, store: Store, lead_id: str, task_queue: str = TASK_QUEUE,
                          attempt_seconds: float = ATTEMPT_SECONDS) -> Ingested:
    """Hands Temporal the lead's pending deliveries in the order they were accepted; stops at the first that fails,
    so a later event never overtakes an earlier one."""
    deliveries = Deliveries(store)
    rows = deliveries.pending(lead_id)
    report = Ingested(new=False)
    for n, row in enumerate(rows):
        if client is None:
            report.pending = [_describe(r) for r in rows[n:]]
            break
        try:
            outcome = await asyncio.wait_for(_deliver(client, store, row, task_queue), attempt_seconds)
        except (RPCError, TimeoutError, RuntimeError) as exc:
            deliveries.failed(row.id or 0, f"{type(exc).__name__}: {exc}")
            report.pending = [_describe(r) for r in rows[n:]]
            break
        deliveries.done(row.id or 0, outcome)
        if row.kind in ("signal", "migrate") and outcome == "signalled" and row.workflow_id not in report.signalled:
            report.signalled.append(row.workflow_id)
        if row.kind == "enrol" and outcome.split(" ", 1)[0] in ("started", "already_running"):
            report.enrolled.append(row.workflow_id)
    return report


async def _deliver(client: Client, store: Store, row: DeliveryRow, task_queue: str) -> str:
    if row.kind == "signal":
        return await signal_once(client, row.workflow_id, "event", LeadEvent(**row.event or {}), row.key)
    if row.kind == "migrate":
        version = store.version(row.care_model, int(row.data["version"]))
        if version is None:
            return f"version {row.data['version']} of '{row.care_model}' is gone"
        sent = await signal_once(client, row.workflow_id, "migrate",
                                 Migration(plan_from_dict(version.plan), dict(row.data["mapping"])), row.key)
        if sent == "signalled":
            store.enrolment_moved(str(row.data["enrolment"]), version.version)
        return sent
    latest = store.latest(row.care_model)
    if latest is None:
        return f"care model '{row.care_model}' is not published"
    trigger = LeadEvent(**row.event) if row.event else None
    enrolled = await enrol(client, store, latest, store.snapshot(row.lead_id), trigger, task_queue)
    return f"{enrolled.status} {enrolled.reason}".strip()


async def signal_once(client: Client, wid: str, signal: str, arg: Any, key: str) -> str:
    """Signals the run once per `key`: Temporal drops a repeated request id, so a delivery retried after its
    answer was lost is not added to the history twice. 'run ended' when there is no run left to tell."""
    request = SignalWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=wid), signal_name=signal,
        identity=client.identity, request_id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
    )
    request.input.payloads.extend(await client.data_converter.encode([arg]))
    try:
        await client.workflow_service.signal_workflow_execution(request, retry=False, timeout=timedelta(seconds=10))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return "run ended"
        raise
    return "signalled"


def _describe(row: DeliveryRow) -> str:
    return f"{row.kind} {row.workflow_id or row.care_model}"
