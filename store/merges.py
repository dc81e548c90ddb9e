"""Two leads found to be one person become one: every row about the other moves to the lead kept, the profiles
combine, and the other's id stays as an alias so that links and calls that still name it reach the kept lead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select

from engine.lifecycle import stage_rank
from store.store import Store
from store.tables import (
    CrmNote,
    CrmTask,
    DeliveryRow,
    Enrolment,
    EventRow,
    FormSubmission,
    Handover,
    JourneyRow,
    Lead,
    LeadAlias,
    OutboxRow,
    ScoreChangeRow,
    SegmentMember,
    StageChange,
    Visitor,
)

# Every table with a lead_id column whose rows simply follow the person.
MOVED = (EventRow, ScoreChangeRow, StageChange, JourneyRow, OutboxRow, Handover, CrmTask, CrmNote, FormSubmission,
         Visitor, DeliveryRow, Enrolment)


@dataclass
class Merged:
    lead: Lead
    moved_runs: list[str]  # the other's running runs, carrying on as the kept lead
    duplicate_runs: list[str]  # the other's runs in care models the kept lead is already in: these stop


def combine(keep: Lead, other: Lead) -> dict[str, Any]:
    """The kept lead's values win; the other fills what it lacks. The further stage and the higher scores stand;
    an unsubscribe under either address holds for the person."""
    return {
        "email": keep.email or other.email, "timezone": keep.timezone or other.timezone,
        "stage": max(keep.stage, other.stage, key=stage_rank), "fit": max(keep.fit, other.fit),
        "engagement": max(keep.engagement, other.engagement), "owner": keep.owner or other.owner,
        "attributes": {**other.attributes, **keep.attributes},
        "unsubscribed": keep.unsubscribed or other.unsubscribed,
        "bounced": keep.bounced if keep.email else other.bounced,
    }


def merge_rows(store: Store, keep_id: str, other_id: str, at: float, by: str) -> Merged:
    """One transaction: nothing is half-merged."""
    with store.session() as s:
        keep, other = s.get(Lead, keep_id, with_for_update=True), s.get(Lead, other_id, with_for_update=True)
        if keep is None or other is None:
            raise LookupError(f"lead '{keep_id if keep is None else other_id}' does not exist")
        running = list(s.exec(select(Enrolment).where(col(Enrolment.lead_id).in_([keep_id, other_id]),
                                                      col(Enrolment.status) == "running")))
        kept_models = {e.care_model for e in running if e.lead_id == keep_id}
        theirs = [e for e in running if e.lead_id == other_id]
        duplicates = [e.workflow_id for e in theirs if e.care_model in kept_models]
        moved = [e.workflow_id for e in theirs if e.care_model not in kept_models]
        for table in MOVED:
            s.exec(update(table).where(col(table.lead_id) == other_id).values(lead_id=keep_id))
        s.exec(delete(SegmentMember).where(col(SegmentMember.lead_id) == other_id))
        s.exec(update(LeadAlias).where(col(LeadAlias.lead_id) == other_id).values(lead_id=keep_id))
        for name, value in combine(keep, other).items():
            setattr(keep, name, value)
        s.add(keep)
        s.delete(other)
        s.flush()
        s.add(LeadAlias(alias=other_id, lead_id=keep_id, at=at, by=by))
    return Merged(keep, moved, duplicates)
