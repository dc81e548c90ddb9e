"""A lead created or changed from outside (the API, a CSV import): only what the caller gives changes, and a
change reaches the lead's runs as an event, so a CRM re-sync never undoes what it did not mention."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from engine.lead import LeadEvent, LeadIn
from store.store import Store
from store.tables import Lead
from workflows.ingest import ingest
from workflows.messages import TASK_QUEUE


class ResubscribeRefused(ValueError):
    """A change that would turn an unsubscribe off: that is `resubscribe`, with a reason, never a side effect."""


async def upsert(client: Client | None, store: Store, lead: LeadIn, event_id: str, at: float,
                 task_queue: str = TASK_QUEUE, why: str = "set by PUT /api/leads") -> tuple[str, Lead]:
    """(created | updated | unchanged, the lead as stored). `event_id` keys the events a change raises, so a
    retried call records them once."""
    if (kept := store.resolve(lead.id)) != lead.id:  # merged into another lead: a CRM re-sync changes that one
        lead = lead.model_copy(update={"id": kept})
    known = store.get_lead(lead.id)
    if known is None:
        return "created", store.upsert_lead(lead.to_state(), lead.unsubscribed)
    given = changed(known, lead.model_dump(include=lead.model_fields_set - {"id", "unsubscribed"}))
    unsubscribing = "unsubscribed" in lead.model_fields_set and lead.unsubscribed != known.unsubscribed
    if unsubscribing:
        if not lead.unsubscribed:
            raise ResubscribeRefused(f"lead '{lead.id}' has unsubscribed; re-subscribing is an explicit act: "
                                     f"POST /api/leads/{lead.id}/resubscribe with a reason")
        await ingest(client, store, lead.id, LeadEvent(f"{event_id}/unsubscribed", "lead.unsubscribed", at,
                                                       {"source": "api"}), task_queue)
    if given:
        await ingest(client, store, lead.id, LeadEvent(f"{event_id}/updated", "lead.updated", at,
                                                       given | {"why": why}), task_queue)
    return ("updated" if given or unsubscribing else "unchanged"), store.get_lead(lead.id) or known


def changed(known: Lead, given: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from the stored lead: an hourly CRM re-sync of the same values adds nothing to the
    timeline and tells no run anything."""
    differs = {k: v for k, v in given.items() if k != "attributes" and getattr(known, k) != v}
    attributes = {k: v for k, v in (given.get("attributes") or {}).items() if known.attributes.get(k) != v}
    return differs | ({"attributes": attributes} if attributes else {})
