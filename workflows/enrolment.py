"""Starts a lead's run of a published care model, after its entry rule and re-enrolment policy say yes."""

from __future__ import annotations

import time
from dataclasses import dataclass

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from engine.conditions import evaluate
from engine.lead import LeadEvent, LeadState
from store.store import Store, plan_from_dict
from store.tables import CareModelVersion
from workflows.care_model_run import CareModelRun
from workflows.messages import TASK_QUEUE, RunInput, workflow_id


@dataclass
class Enrolled:
    status: str  # started | already_running | not_eligible | pending
    workflow_id: str
    reason: str = ""


_REUSE = {"never": WorkflowIDReusePolicy.REJECT_DUPLICATE, "after_exit": WorkflowIDReusePolicy.ALLOW_DUPLICATE}


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
        handle = await client.start_workflow(
            CareModelRun.run, RunInput(plan=plan, lead=lead), id=wid, task_queue=task_queue,
            id_reuse_policy=_REUSE[policy],
            start_signal="event" if trigger else None, start_signal_args=[trigger] if trigger else [],
        )
    except WorkflowAlreadyStartedError:
        described = await client.get_workflow_handle(wid).describe()
        if described.status != WorkflowExecutionStatus.RUNNING:
            return Enrolled("not_eligible", wid, "enrolled before and re-enrolment is 'never'")
        # A start whose answer was lost (the process died after Temporal took it) leaves no enrolment row.
        store.enrolment_started(wid, described.run_id, plan.care_model, plan.version, lead.id)
        return Enrolled("already_running", wid)
    store.enrolment_started(wid, handle.result_run_id or "", plan.care_model, plan.version, lead.id)
    return Enrolled("started", wid)
