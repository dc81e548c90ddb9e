"""What the web app and the CLI ask of running care models: move them onto a new version, say where a lead is,
end them when the lead is erased."""

from __future__ import annotations

import time

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from store.deliveries import Deliveries
from store.privacy import erase
from store.store import Store
from store.tables import CareModelVersion, DeliveryRow
from workflows.care_model_run import CareModelRun
from workflows.ingest import Ingested, deliver_pending
from workflows.messages import TASK_QUEUE, Where, workflow_id


async def migrate_runs(client: Client | None, store: Store, version: CareModelVersion, mapping: dict[str, str],
                       task_queue: str = TASK_QUEUE) -> Ingested:
    """Moves every lead running an older version of this care model onto `version`.

    Each move is a delivery: taken now when Temporal answers, otherwise by the redelivery loop later."""
    now = time.time()
    rows = [DeliveryRow(key=f"migrate/{e.enrolment}/{version.version}", lead_id=e.lead_id, kind="migrate",
                        workflow_id=e.workflow_id, care_model=version.care_model, created_at=now,
                        data={"version": version.version, "mapping": dict(mapping), "enrolment": e.enrolment})
            for e in store.enrolments(care_model=version.care_model, running=True) if e.version != version.version]
    Deliveries(store).add(rows)
    report = Ingested(new=False)
    for lead_id in dict.fromkeys(r.lead_id for r in rows):
        report.merge(await deliver_pending(client, store, lead_id, task_queue))
    return report


async def where(client: Client, care_model: str, lead_id: str) -> Where:
    return await client.get_workflow_handle(workflow_id(care_model, lead_id)).query(CareModelRun.where)


async def erase_lead(client: Client, store: Store, lead_id: str) -> dict[str, int]:
    """Ends the lead's runs, then erases what the app holds on it (store.privacy.erase). Runs are terminated, not
    cancelled: a cancelled run could still send from a cleanup step, a terminated one does nothing more; and a send
    already in flight is refused by the outbox, which finds the lead gone."""
    ended = 0
    for enrolment in store.enrolments(lead_id=lead_id, running=True):
        try:
            await client.get_workflow_handle(enrolment.workflow_id).terminate("the lead's data was erased on request")
            ended += 1
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
    counts = erase(store, lead_id)
    return {"runs_ended": ended, **counts}
