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
from engine.plan import EntryPlan, entry_of, plan_from_dict
from engine.segments import JOINED, LEFT
from store.deliveries import Deliveries
from store.scores import Rescored, Scoring, rescore_many
from store.segments import Changes, Segments
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


class Targets:
    """Whom events concern, with the published care models read once for many events."""

    def __init__(self, store: Store) -> None:
        # Read now, not when first needed: it is called inside the transaction that records the events.
        self.versions, self.archived = store.settled("entry-rules", lambda: self._entries(store))
        self.running: dict[str, list[str]] = {}  # each lead's running runs, as the events were recorded

    @staticmethod
    def _entries(store: Store) -> tuple[list[tuple[str, EntryPlan]], set[str]]:
        versions = [(v.care_model, entry) for v in store.latest_versions()
                    if (entry := entry_of(v.plan)) and entry.event]
        return versions, store.archived() if versions else set()

    def __call__(self, lead_id: str, event: LeadEvent, running: list[str]) -> list[DeliveryRow]:
        self.running[lead_id] = running
        entered = [model for model, entry in self.versions
                   if event_matches(event.type, event.data, entry.event or "", entry.where)]
        rows = [enrol_row(f"{event.id}>enrol/{model}", lead_id, model, event, event.at)
                for model in entered if model not in self.archived]
        starting = {r.workflow_id for r in rows}  # signal-with-start hands them the event already
        return rows + [signal_row(event, lead_id, wid) for wid in sorted(set(running) - starting)]


async def ingest(client: Client | None, store: Store, lead_id: str, event: LeadEvent,
                 task_queue: str = TASK_QUEUE, attempt_seconds: float = ATTEMPT_SECONDS) -> Ingested:
    """Records the event (once per id), rescores, and delivers what is pending for the lead.

    `client` None means Temporal is out of reach: the event is still accepted, its deliveries wait. An event about
    an erased lead (a click on an old email, say) is dropped: nothing about it is kept. An id merged into another
    lead (a click on an email sent before the merge) means that lead."""
    [result] = await ingest_many(client, store, [(lead_id, event)], task_queue, attempt_seconds)
    return result


async def ingest_many(client: Client | None, store: Store, batch: list[tuple[str, LeadEvent]],
                      task_queue: str = TASK_QUEUE, attempt_seconds: float = ATTEMPT_SECONDS) -> list[Ingested]:
    """Many events as `ingest` takes each, recorded in one transaction; then each lead is rescored, placed in its
    segments and handed to Temporal once, for all its events of the batch. One result per event, in order: a new
    event's says what its lead's events of the batch brought about together."""
    resolved = store.resolved(sorted({lead_id for lead_id, _ in batch}))
    kept = [(n, resolved[lead_id], event) for n, (lead_id, event) in enumerate(batch) if lead_id in resolved]
    results = [Ingested(new=False) for _ in batch]
    updated = {lead_id for _, lead_id, e in kept if e.type == "lead.updated"}  # what may change a stage
    stages = {lead_id: row.stage for lead_id in updated if (row := store.get_lead(lead_id)) is not None}
    targets = Targets(store)
    new = store.record_events([(lead_id, event) for _, lead_id, event in kept], targets)
    last: dict[str, LeadEvent] = {}
    for (n, lead_id, event), fresh in zip(kept, new, strict=True):
        results[n].new = fresh
        if fresh:
            last[lead_id] = event
    # What follows from all of a lead's events at once: a stage the CRM set, new scores, segments joined or left.
    reports = {lead_id: Ingested(new=True) for lead_id in last}
    leads = store.snapshots(sorted(last))
    for lead_id, event in last.items():
        if lead_id in stages and leads[lead_id].stage != stages[lead_id]:
            reports[lead_id].merge(await stage_changed(
                client, store, lead_id, event, stages[lead_id], leads[lead_id].stage,
                str(event.data.get("why") or event.type), task_queue, attempt_seconds))
            leads[lead_id] = store.snapshot(lead_id)
            targets.running.pop(lead_id, None)  # the stage may have started runs since: ask again below
    # A stage change or a sales decision is not a sign of interest: a lead sales recycled waits for new engagement
    # before a threshold moves it again, instead of bouncing straight back to MQL on its old score.
    rescored = rescore_many(store, [(leads[i], e.at, e.type not in NOT_INTEREST) for i, e in last.items()],
                            Scoring.read(store, sorted(last)))
    for lead_id, event in last.items():
        if (found := rescored.get(lead_id)) is not None:
            await _rescored(client, store, leads[lead_id], event, found, targets.running.get(lead_id),
                            task_queue, attempt_seconds, reports[lead_id])
    placed = Segments(store).place_many([(leads[i], e.at) for i, e in last.items() if e.type not in (JOINED, LEFT)])
    for lead_id, changes in placed.items():
        await _segments(client, store, lead_id, last[lead_id], changes, task_queue, attempt_seconds,
                        reports[lead_id])
    # Every lead named, not only those with new events: the same event posted again delivers what still waits.
    delivered = {lead_id: await deliver_pending(client, store, lead_id, task_queue, attempt_seconds)
                 for lead_id in Deliveries(store).waiting_among(sorted({lead_id for _, lead_id, _ in kept}))}
    for n, lead_id, _ in kept:  # each event answers with what its lead's events of the batch brought about
        if results[n].new:
            results[n].merge(reports[lead_id])
        if lead_id in delivered:
            results[n].merge(delivered[lead_id])
    return results


NOT_INTEREST = frozenset({"lead.stage_changed", "handover.accepted", "handover.rejected", "handover.expired"})


async def _rescored(client: Client | None, store: Store, lead: LeadState, event: LeadEvent, rescored: Rescored,
                    running: list[str] | None, task_queue: str, attempt_seconds: float, result: Ingested) -> None:
    """New scores reach the lead's runs; a threshold crossed moves the stage and starts what it names."""
    if not (rescored.changed or rescored.moves):
        return
    queue_for_runs(store, lead.id, LeadEvent(f"{event.id}/scores", "lead.updated", event.at,
                                             {"fit": lead.fit, "engagement": lead.engagement, "stage": lead.stage}),
                   running)
    for old, new, why, models in rescored.moves:
        result.merge(await stage_changed(client, store, lead.id, event, old, new, why, task_queue, attempt_seconds))
        key = f"{event.id}/stage/{new}"
        Deliveries(store).add([enrol_row(f"{key}>enrol/{m}", lead.id, m, None, event.at) for m in models])


async def _segments(client: Client | None, store: Store, lead_id: str, event: LeadEvent, changes: Changes,
                    task_queue: str, attempt_seconds: float, result: Ingested) -> None:
    """Joining or leaving a segment is an event of its own, so `entry: {event: segment.joined, where: {segment: X}}`
    starts a care model when a lead comes to match X; its id derives from the cause, so a retry records it once."""
    for kind, ids in ((JOINED, changes.joined), (LEFT, changes.left)):
        for segment in ids:
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


def queue_for_runs(store: Store, lead_id: str, event: LeadEvent, running: list[str] | None = None) -> None:
    """Queues a derived event (new scores, say) for the lead's running runs (read here, unless given); not kept on
    its timeline."""
    if running is None:
        running = [e.workflow_id for e in store.enrolments(lead_id=lead_id, running=True)]
    Deliveries(store).add([signal_row(event, lead_id, wid) for wid in running])


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
