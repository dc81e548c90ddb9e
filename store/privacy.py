"""Privacy requests on the data floor: everything held on a lead as one document, and erasure.

Erasing deletes the profile and timeline, keeps the journey's shape for the numbers under a pseudonym with its
free text removed, and leaves hashes of the address and id so that neither is ever emailed or tracked again.
Cancelling the lead's runs is Temporal's part, done by the caller first."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from sqlmodel import SQLModel, col, delete, select

from store.store import Store, suppression_key
from store.tables import (
    CrmNote,
    CrmTask,
    DeliveryRow,
    Enrolment,
    EventRow,
    Handover,
    JourneyRow,
    Lead,
    OutboxRow,
    ScoreChangeRow,
    StageChange,
    Suppression,
)

# What an export holds, and where: each table with a lead_id column.
SECTIONS: dict[str, type[SQLModel]] = {
    "events": EventRow, "enrolments": Enrolment, "journey": JourneyRow, "scores": ScoreChangeRow,
    "stages": StageChange, "deliveries": OutboxRow, "handovers": Handover, "crm_tasks": CrmTask,
    "crm_notes": CrmNote, "pending": DeliveryRow,
}
DELETED: tuple[type[Any], ...] = (EventRow, ScoreChangeRow, CrmTask, CrmNote, DeliveryRow)
# Kept under the pseudonym for the numbers, with these free-text fields cleared.
REDACTED: tuple[tuple[type[Any], tuple[str, ...]], ...] = (
    (JourneyRow, ("why",)), (OutboxRow, ("reason",)), (Handover, ("note", "reason")), (StageChange, ("reason",)),
    (Enrolment, ("outcome",)))


def pseudonym(lead_id: str) -> str:
    return "erased-" + hashlib.sha256(lead_id.encode()).hexdigest()[:16]


def export(store: Store, lead_id: str) -> dict[str, Any] | None:
    with store.session() as s:
        lead = s.get(Lead, lead_id)
        if lead is None:
            return None
        out: dict[str, Any] = {"exported_at": time.time(), "lead": lead.model_dump(mode="json")}
        for name, table in SECTIONS.items():
            out[name] = [r.model_dump(mode="json")
                         for r in s.exec(select(table).where(col(table.lead_id) == lead_id))]  # type: ignore[attr-defined]
    return out


def erase(store: Store, lead_id: str) -> dict[str, int]:
    """Rows deleted and rows redacted, by table. The lead must exist."""
    alias = pseudonym(lead_id)
    counts: dict[str, int] = {}
    with store.session() as s:
        lead = s.get(Lead, lead_id, with_for_update=True)
        if lead is None:
            raise KeyError(f"lead '{lead_id}' does not exist")
        for kind, value in (("lead", lead_id), ("email", lead.email)):
            key = suppression_key(kind, value)
            if value and s.get(Suppression, key) is None:
                s.add(Suppression(hash=key, kind=kind, at=time.time()))
        for table in DELETED:
            result = s.exec(delete(table).where(col(table.lead_id) == lead_id))
            counts[table.__tablename__] = result.rowcount
        for table, free_text in ((JourneyRow, ("why",)), (OutboxRow, ("reason",)), (Handover, ("note", "reason")),
                                 (StageChange, ("reason",)), (Enrolment, ("outcome",))):
            rows = list(s.exec(select(table).where(col(table.lead_id) == lead_id)))
            for row in rows:
                _redact(s, row, lead_id, alias, free_text)
            counts[table.__tablename__] = len(rows)
        s.delete(lead)
    return counts


def _redact(s: Any, row: Any, lead_id: str, alias: str, free_text: tuple[str, ...]) -> None:
    """The row under the pseudonym: keys that embed the lead's id are rewritten, free text and payloads cleared."""
    fields = row.model_dump()
    for name, value in fields.items():
        if isinstance(value, str) and lead_id in value:
            fields[name] = value.replace(lead_id, alias)
    for name in free_text:
        fields[name] = "(erased)" if fields[name] else ""
    if "payload" in fields:
        fields["payload"] = {}
    if isinstance(row, Enrolment) and row.status == "running":
        fields["status"] = "erased"
    s.delete(row)
    s.flush()
    s.add(type(row)(**fields))
