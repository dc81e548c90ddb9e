"""The app's own periodic work (APScheduler): engagement decays even when a lead does nothing."""

from __future__ import annotations

import time
import uuid

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from temporalio.client import Client

from engine.lead import LeadEvent
from store.scores import rescore
from store.store import Store
from workflows.ingest import deliver_pending, queue_for_runs


async def decay_scores(store: Store, client: Client, now: float | None = None) -> int:
    """Rescores every lead with engagement; tells their running care models. Returns how many changed."""
    now = now or time.time()
    lead_ids = store.engaged_lead_ids()
    changed = 0
    for lead_id in lead_ids:
        lead = store.snapshot(lead_id)
        result = rescore(store, lead, now)
        if result is None:
            return 0  # no scoring model: scores belong to the integrator
        if not result.changed:
            continue
        changed += 1
        queue_for_runs(store, lead_id, LeadEvent(f"decay/{uuid.uuid4()}", "lead.updated", now,
                                                 {"fit": lead.fit, "engagement": lead.engagement, "stage": lead.stage}))
        await deliver_pending(client, store, lead_id)
    return changed


def scheduler(store: Store, client: Client, every_minutes: int = 60) -> AsyncIOScheduler:
    jobs = AsyncIOScheduler(timezone="UTC")
    jobs.add_job(decay_scores, "interval", minutes=every_minutes, args=[store, client], id="decay-scores",
                 max_instances=1, coalesce=True)
    return jobs
