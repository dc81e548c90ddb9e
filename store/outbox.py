"""The outbox: one row per effect key, claimed before the effect and settled after it, so a retry never repeats it.

Consent and the frequency cap are checked inside the claiming transaction, with the lead's row locked, so two runs
of one lead cannot both see the cap as not yet reached."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, func, select

from engine.durations import format_duration
from engine.plan import CapPlan
from store.store import Store
from store.tables import Lead, OutboxRow

# Channels that reach the lead themselves: consent and frequency caps apply to these.
CONSENTED_CHANNELS = frozenset({"email", "social"})
DONE = frozenset({"sent", "dry_run", "skipped", "bounced"})


@dataclass(frozen=True)
class SendRules:
    """What must hold for a message to the lead to go out: consent, and the care model's frequency cap."""

    frequency_cap: CapPlan | None = None


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    def claim(self, row: OutboxRow, rules: SendRules | None) -> OutboxRow:
        """The row already kept for `row.key`, if any; otherwise `row`, stored as 'skipped' when it carries a reason
        or the rules refuse it (the reason says why), else as 'sending'. `rules` None: our own people, no rules."""
        with self.store.session() as s:
            existing = s.get(OutboxRow, row.key)
            if existing is not None:
                return existing
            # Row lock on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises).
            lead = s.get(Lead, row.lead_id, with_for_update=True)
            row.reason = row.reason or (refusal(s, row, lead, rules) if rules is not None else "")
            row.status = "skipped" if row.reason else "sending"
            s.add(row)
        return row

    def settle(self, key: str, status: str, external_id: str, detail: str) -> None:
        """Records what the provider said; a hard bounce also marks the lead's address as bounced."""
        with self.store.session() as s:
            row = s.get(OutboxRow, key)
            if row is None:
                return
            row.status, row.external_id, row.reason = status, external_id, detail
            s.add(row)
            lead = s.get(Lead, row.lead_id) if status == "bounced" and row.channel == "email" else None
            if lead is not None:
                lead.bounced = True
                s.add(lead)


def refusal(s: Session, row: OutboxRow, lead: Lead | None, rules: SendRules) -> str:
    """Why this message may not go to the lead now; empty when it may."""
    if row.channel not in CONSENTED_CHANNELS:
        return ""
    if lead is not None and lead.unsubscribed:
        return "lead has unsubscribed"
    if lead is not None and lead.bounced and row.channel == "email":
        return "email address bounced"
    cap = rules.frequency_cap
    if cap and row.channel in cap.channels:
        sent = s.exec(select(func.count()).select_from(OutboxRow).where(
            col(OutboxRow.lead_id) == row.lead_id, col(OutboxRow.channel).in_(cap.channels),
            col(OutboxRow.status).in_(("sent", "dry_run", "sending")), col(OutboxRow.at) > row.at - cap.per_seconds,
        )).one()
        if sent >= cap.max:
            return f"frequency cap: {sent} of {cap.max} per {format_duration(cap.per_seconds)} used"
    return ""
