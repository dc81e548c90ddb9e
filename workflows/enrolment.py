"""Starts a lead's run of a published care model, after its entry rule and re-enrolment policy say yes."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import WorkflowIdReusePolicy
from temporalio.api.workflowservice.v1 import SignalWithStartWorkflowExecutionRequest, StartWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from engine.conditions import evaluate
from engine.lead import LeadEvent, LeadState
from engine.plan import plan_from_dict
from store.store import Store
from store.tables import CareModelVersion
from workflows.messages import TASK_QUEUE, RunInput, workflow_id


@dataclass
class Enrolled:
    status: str  # started | already_running | not_eligible | pending
    workflow_id: str
    reason: str = ""


_REUSE = {"never": WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
          "after_exit": WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE}
_TIMEOUT = timedelta(seconds=10)


async def enrol(client: Client, store: Store, version: CareModelVersion, lead: LeadState,
                trigger: LeadEvent | None = None, task_queue: str = TASK_QUEUE, check_entry: bool = True) -> Enrolled:
    plan = plan_from_dict(version.plan)
    wid = workflow_id(plan.care_model, lead.id)
    policy, entry = plan.settings.reenrol, plan.settings.entry
    if check_entry and entry is not None and entry.when:
        ok, why = evaluate(entry.when, lead, trigger.at if trigger else time.time())
        if not ok:
            return Enrolled("not_eligible", wid, f"entry rule: {why}")
    if policy == "never" and store.enrolments(lead_id=lead.id, care_model=plan.care_model):
        return Enrolled("not_eligible", wid, "already enrolled once and re-enrolment is 'never'")
    try:
        started = await start_run(client, RunInput(plan=plan, lead=lead), wid, task_queue, _REUSE[policy], trigger)
    except RPCError as exc:
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        described = await client.get_workflow_handle(wid).describe()
        if described.status != WorkflowExecutionStatus.RUNNING:
            return Enrolled("not_eligible", wid, "enrolled before and re-enrolment is 'never'")
        started = described.run_id, False
    run_id, new = started
    # Also when already running: a start whose answer was lost (the process died after Temporal took it) left
    # no enrolment row behind.
    store.enrolment_started(wid, run_id, plan.care_model, plan.version, lead.id)
    return Enrolled("started" if new else "already_running", wid)


async def start_run(client: Client, inp: RunInput, wid: str, task_queue: str, reuse: WorkflowIdReusePolicy.ValueType,
                    trigger: LeadEvent | None) -> tuple[str, bool]:
    """Starts the run (with its trigger event, when there is one) in one request Temporal answers once per request id,
    without client-side retries: a caller that gives up leaves nothing retrying behind it. (run id, newly started)"""
    key = f"{wid}/{trigger.id if trigger else time.time()}"
    payloads = await client.data_converter.encode([inp])
    if trigger is None:
        request = StartWorkflowExecutionRequest()
        _fill(request, client, wid, task_queue, reuse, key, payloads)
        started = await client.workflow_service.start_workflow_execution(request, retry=False, timeout=_TIMEOUT)
        return started.run_id, True
    with_signal = SignalWithStartWorkflowExecutionRequest(signal_name="event")
    _fill(with_signal, client, wid, task_queue, reuse, key, payloads)
    with_signal.signal_input.payloads.extend(await client.data_converter.encode([trigger]))
    answer = await client.workflow_service.signal_with_start_workflow_execution(with_signal, retry=False,
                                                                                timeout=_TIMEOUT)
    return answer.run_id, answer.started


def _fill(request: StartWorkflowExecutionRequest | SignalWithStartWorkflowExecutionRequest, client: Client, wid: str,
          task_queue: str, reuse: WorkflowIdReusePolicy.ValueType, key: str, payloads: list[Payload]) -> None:
    request.namespace, request.workflow_id, request.identity = client.namespace, wid, client.identity
    request.workflow_type.name, request.task_queue.name = "CareModelRun", task_queue
    request.workflow_id_reuse_policy = reuse
    request.request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
    request.input.payloads.extend(payloads)
