"""The outbox: one row per effect key, claimed before the effect and settled after it, so a retry never repeats it.

Consent and the frequency cap are checked inside the claiming transaction, with the lead's row locked, on every
attempt: a lead who unsubscribes while an email waits for its retry does not get it. A row still 'sending' when
the next attempt comes means the last attempt may have reached the provider: it is sent again only where the
channel's policy says a resend is safe, and is otherwise recorded as 'uncertain' for a person to decide."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from engine.durations import format_duration
from engine.plan import CapPlan
from store.store import Store, suppression_key
from store.tables import Lead, LeadAlias, OutboxRow, Suppression

# Channels that reach the lead themselves: consent and frequency caps apply to these.
CONSENTED_CHANNELS = frozenset({"email", "social"})
DONE = frozenset({"sent", "dry_run", "skipped", "bounced", "failed", "uncertain"})
UNCERTAIN = ("an earlier attempt may have reached the provider (it did not answer in time); not sent again "
             "automatically: resend it from Needs attention if it did not arrive")


@dataclass(frozen=True)
class SendRules:
    """What must hold for a message to the lead to go out: consent, and the care model's frequency cap."""

    frequency_cap: CapPlan | None = None


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    def claim(self, row: OutboxRow, rules: SendRules | None, resend_uncertain: bool = False) -> tuple[OutboxRow, float]:
        """The row for `row.key`, now 'sending' when this attempt may go ahead; otherwise it says why not. With it,
        when the frequency cap next allows a message, if the cap is why (else 0).

        A first attempt stores `row`. `rules` None: a message to our own people, no consent or caps."""
        with self.store.session() as s:
            kept = s.get(OutboxRow, row.key)
            if kept is not None and kept.status in DONE:
                return kept, 0
            if kept is not None and kept.status == "sending" and not resend_uncertain:
                kept.status, kept.reason = "uncertain", UNCERTAIN
                s.add(kept)
                return kept, 0
            target = kept or row
            alias = s.get(LeadAlias, target.lead_id)  # a run not yet told of a merge: consent is the person's
            if alias is not None:
                target.lead_id = alias.lead_id
            # Row lock on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises).
            lead = s.get(Lead, target.lead_id, with_for_update=True)
            target.audience = "lead" if rules is not None else "team"
            reason, frees_at = refusal(s, target, lead, rules) if rules is not None else ("", 0.0)
            target.reason = row.reason or reason
            target.status = "skipped" if target.reason else "sending"
            s.add(target)
        return target, frees_at

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

    def release(self, key: str) -> None:
        """Nothing went out (a rate limit held it back): the next attempt may send."""
        with self.store.session() as s:
            row = s.get(OutboxRow, key)
            if row is not None and row.status == "sending":
                row.status = "retrying"
                s.add(row)

    def refused(self, key: str, reason: str, give_up_after: int) -> OutboxRow | None:
        """The provider refused before anything could be delivered: the next attempt may send again ('retrying'),
        until `give_up_after` refusals make it 'failed'."""
        with self.store.session() as s:
            row = s.get(OutboxRow, key)
            if row is None:
                return None
            row.failures += 1
            row.status = "failed" if row.failures >= give_up_after else "retrying"
            row.reason = f"{reason} (attempt {row.failures} of {give_up_after})"
            s.add(row)
            return row


def refusal(s: Session, row: OutboxRow, lead: Lead | None, rules: SendRules) -> tuple[str, float]:
    """Why this message may not go to the lead now (empty when it may), and for the cap, when it next would."""
    if row.channel not in CONSENTED_CHANNELS:
        return "", 0
    if lead is None:
        return "the lead no longer exists (erased on request)", 0
    if lead.email and s.get(Suppression, suppression_key("email", lead.email)) is not None:
        return "the address belongs to an erased lead", 0
    if lead.unsubscribed:
        return "lead has unsubscribed", 0
    if lead.bounced and row.channel == "email":
        return "email address bounced", 0
    cap = rules.frequency_cap
    if cap and row.channel in cap.channels:
        counted = sorted(s.exec(select(OutboxRow.at).where(
            col(OutboxRow.lead_id) == row.lead_id, col(OutboxRow.channel).in_(cap.channels),
            col(OutboxRow.audience) == "lead", col(OutboxRow.key) != row.key,
            col(OutboxRow.status).in_(("sent", "dry_run", "sending", "uncertain")),
            col(OutboxRow.at) > row.at - cap.per_seconds,
        )))
        if len(counted) >= cap.max:
            frees_at = counted[len(counted) - cap.max] + cap.per_seconds  # when enough of them leave the window
            return f"frequency cap: {len(counted)} of {cap.max} per {format_duration(cap.per_seconds)} used", frees_at
    return "", 0
