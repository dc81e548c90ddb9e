"""Merging two leads found to be the same person, with their running care models left coherent: the other's runs
carry on as the kept lead, except where the kept lead is already in that care model (those end as duplicates,
so no one is in a care model twice); events still naming the other reach the kept lead."""

from __future__ import annotations

from temporalio.client import Client

from engine.lead import LeadEvent
from store.merges import Merged, merge_rows
from store.store import Store
from workflows.ingest import deliver_pending, ingest, queue_for_runs
from workflows.messages import TASK_QUEUE


async def merge_leads(client: Client | None, store: Store, keep: str, other: str, by: str, at: float,
                      task_queue: str = TASK_QUEUE) -> Merged:
    """Raises LookupError for an unknown lead, ValueError when the two are one already."""
    keep, other = store.resolve(keep), store.resolve(other)
    if keep == other:
        raise ValueError(f"'{keep}' and '{other}' are one lead already")
    merged = merge_rows(store, keep, other, at, by)
    # Told through the deliveries table like any event: taken by every run now under the kept lead, in order.
    await ingest(client, store, keep, LeadEvent(f"merge:{other}>{keep}", "lead.merged", at, {
        "merged": other, "into": keep, "duplicates": merged.duplicate_runs, "by": by}), task_queue)
    lead = merged.lead
    queue_for_runs(store, keep, LeadEvent(f"merge:{other}>{keep}/profile", "lead.updated", at, {
        "email": lead.email, "timezone": lead.timezone, "stage": lead.stage, "fit": lead.fit,
        "engagement": lead.engagement, "attributes": lead.attributes}))
    await deliver_pending(client, store, keep, task_queue)
    return merged
