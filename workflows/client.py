"""What the web app and the CLI ask of Temporal: enrol a lead, deliver an event, ask where a lead is."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from engine.conditions import evaluate, event_matches
from engine.lead import MAX_EVENTS, LeadEvent, LeadState
from nurture.scores import rescore
from nurture.store import Store, lead_state, plan_from_dict
from nurture.tables import CareModelVersion
from workflows.activities import enrolment_row
from workflows.care_model_run import CareModelRun
from workflows.messages import TASK_QUEUE, Migration, RunInput, Where, workflow_id


@dataclass
class Enrolled:
    status: str  # started | already_running | not_eligible
    workflow_id: str
    reason: str = ""


@dataclass
class Ingested:
    new: bool
    signalled: list[str] = field(default_factory=list)
    enrolled: list[str] = field(default_factory=list)
    staged: list[str] = field(default_factory=list)


_REUSE = {"never": WorkflowIDReusePolicy.REJECT_DUPLICATE, "after_exit": WorkflowIDReusePolicy.ALLOW_DUPLICATE}


def snapshot(store: Store, lead_id: str) -> LeadState:
    """The lead as a new run starts with it: profile, scores and its recent timeline."""
    row = store.get_lead(lead_id)
    lead = lead_state(row) if row is not None else LeadState(id=lead_id)
    lead.events = [LeadEvent(e.id, e.type, e.at, e.data) for e in store.timeline(lead_id)[-MAX_EVENTS:]]
    return lead


async def enrol(client: Client, store: Store, version: CareModelVersion, lead: LeadState,
                trigger: LeadEvent | None = None, task_queue: str = TASK_QUEUE) -> Enrolled:
    plan = plan_from_dict(version.plan)
    wid = workflow_id(plan.care_model, lead.id)
    policy = plan.settings["reenrol"]
    entry = plan.settings.get("entry") or {}
    if entry.get("when"):
        ok, why = evaluate(entry["when"], lead, trigger.at if trigger else time.time())
        if not ok:
            return Enrolled("not_eligible", wid, f"entry rule: {why}")
    if policy == "never" and store.enrolments(lead_id=lead.id, care_model=plan.care_model):
        return Enrolled("not_eligible", wid, "already enrolled once and re-enrolment is 'never'")
    try:
        handle: WorkflowHandle = await client.start_workflow(
            CareModelRun.run, RunInput(plan=plan, lead=lead), id=wid, task_queue=task_queue,
            id_reuse_policy=_REUSE[policy],
            start_signal="event" if trigger else None, start_signal_args=[trigger] if trigger else [],
        )
    except WorkflowAlreadyStartedError:
        described = await client.get_workflow_handle(wid).describe()
        if described.status == WorkflowExecutionStatus.RUNNING:
            return Enrolled("already_running", wid)
        return Enrolled("not_eligible", wid, "enrolled before and re-enrolment is 'never'")
    store.enrolment_started(enrolment_row(wid, handle.result_run_id or "", plan.care_model, plan.version, lead.id))
    return Enrolled("started", wid)


async def ingest(client: Client, store: Store, lead_id: str, event: LeadEvent,
                 task_queue: str = TASK_QUEUE) -> Ingested:
    """Store the event on the lead's timeline, rescore, start entry-rule enrolments, and signal running runs."""
    if store.get_lead(lead_id) is None:
        store.upsert_lead(LeadState(id=lead_id, email=str(event.data.get("email", ""))))
    if not store.record_event(event, lead_id):
        return Ingested(new=False)
    result = Ingested(new=True)
    lead = snapshot(store, lead_id)
    rescored = rescore(store, lead, event.at)
    for version in store.latest_versions():
        entry = version.plan["settings"].get("entry") or {}
        if entry.get("event") and event_matches(event.type, event.data, entry["event"], entry.get("where", {})):
            enrolled = await enrol(client, store, version, lead, trigger=event, task_queue=task_queue)
            if enrolled.status in ("started", "already_running"):
                result.enrolled.append(enrolled.workflow_id)
    signals = [event]
    if rescored is not None and (rescored.changed or rescored.moves):
        signals.append(LeadEvent(f"{event.id}/scores", "lead.updated", event.at,
                                 {"fit": lead.fit, "engagement": lead.engagement, "stage": lead.stage}))
    for enrolment in store.enrolments(lead_id=lead_id, running=True):
        if enrolment.workflow_id in result.enrolled:
            continue
        handle = client.get_workflow_handle(enrolment.workflow_id)
        try:
            for signal in signals:
                await handle.signal(CareModelRun.on_event, signal)
            result.signalled.append(enrolment.workflow_id)
        except RPCError:
            pass  # the run ended between our read and the signal; its end is recorded by the run itself
    for old, new, why, models in (rescored.moves if rescored else []):
        moved = LeadEvent(f"{event.id}/stage/{new}", "lead.stage_changed", event.at,
                          {"from": old, "to": new, "why": why})
        result.staged.append(new)
        await ingest(client, store, lead_id, moved, task_queue)
        for care_model in models:
            version = store.latest(care_model)
            if version is not None:
                enrolled = await enrol(client, store, version, snapshot(store, lead_id), task_queue=task_queue)
                result.enrolled.append(enrolled.workflow_id)
    return result


async def migrate_runs(client: Client, store: Store, version: CareModelVersion, mapping: dict[str, str]) -> int:
    """Moves every lead running an older version of this care model onto `version`; returns how many."""
    plan = plan_from_dict(version.plan)
    moved = 0
    for enrolment in store.enrolments(care_model=version.care_model, running=True):
        if enrolment.version == version.version:
            continue
        try:
            await client.get_workflow_handle(enrolment.workflow_id).signal(CareModelRun.on_migrate,
                                                                           Migration(plan, dict(mapping)))
        except RPCError:
            continue  # ended meanwhile
        store.enrolment_moved(enrolment.enrolment, version.version)
        moved += 1
    return moved


async def where(client: Client, care_model: str, lead_id: str) -> Where:
    return await client.get_workflow_handle(workflow_id(care_model, lead_id)).query(CareModelRun.where)
