"""Keeps each lead's scores current under the published scoring model, and moves stages at thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import col, select

from engine.lead import LeadState
from engine.lifecycle import stage_rank
from engine.scoring import ScoreCard, ScoringModel, reached, score
from store.sales import LifecycleError, SalesStore
from store.store import Store
from store.tables import Lead


@dataclass
class Rescored:
    card: ScoreCard
    changed: bool
    moves: list[tuple[str, str, str, list[str]]] = field(default_factory=list)  # (from, to, why, enrol)


def current_model(store: Store) -> tuple[int, ScoringModel] | None:
    def read() -> tuple[int, ScoringModel] | None:
        row = SalesStore(store).scoring_model()
        return (row.version, ScoringModel.model_validate(row.document)) if row else None
    return store.settled("scoring-model", read)


@dataclass
class Scoring:
    """What rescoring needs besides the lead, read once for many leads (a batch of events)."""

    model: ScoringModel | None
    adjustments: dict[str, list[tuple[str, float, str]]]

    @classmethod
    def read(cls, store: Store, lead_ids: list[str]) -> Scoring:
        published = current_model(store)
        if published is None:
            return cls(None, {})
        found: dict[str, list[tuple[str, float, str]]] = {lead_id: [] for lead_id in lead_ids}
        for a in SalesStore(store).adjustments_of(lead_ids):
            found[a.lead_id].append((a.score, a.delta, a.reason))
        return cls(published[1], found)


def rescore(store: Store, lead: LeadState, now: float, thresholds: bool = True,
            scoring: Scoring | None = None) -> Rescored | None:
    """None when no scoring model is published: scores then stay as integrators set them. `thresholds` False:
    scores move, stages do not."""
    return rescore_many(store, [(lead, now, thresholds)], scoring).get(lead.id)


def rescore_many(store: Store, leads: list[tuple[LeadState, float, bool]],
                 scoring: Scoring | None = None) -> dict[str, Rescored]:
    """`rescore` for many leads, the new scores written in one transaction; the leads given are updated."""
    scoring = scoring or Scoring.read(store, [lead.id for lead, _, _ in leads])
    model = scoring.model
    if model is None:
        return {}
    cards = {lead.id: score(model, lead, now, scoring.adjustments.get(lead.id, [])) for lead, now, _ in leads}
    with store.session() as s:
        rows = s.exec(select(Lead).where(col(Lead.id).in_(list(cards))).with_for_update())
        changed = {row.id for row in rows if (row.fit, row.engagement) != (cards[row.id].fit, cards[row.id].engagement)}
        for row in s.exec(select(Lead).where(col(Lead.id).in_(sorted(changed)))):
            row.fit, row.engagement = cards[row.id].fit, cards[row.id].engagement
            s.add(row)
    sales = SalesStore(store)
    results = {}
    for lead, now, thresholds in leads:
        card = cards[lead.id]
        lead.fit, lead.engagement = card.fit, card.engagement
        result = results[lead.id] = Rescored(card, lead.id in changed)
        for threshold, why in reached(model, lead, now) if thresholds else []:
            if stage_rank(threshold.stage) <= stage_rank(lead.stage):
                continue
            try:
                sales.set_stage(lead.id, threshold.stage, f"threshold: {why}", now)
            except LifecycleError:
                continue
            result.moves.append((lead.stage, threshold.stage, why, list(threshold.enrol)))
            lead.stage = threshold.stage
    return results


def explain(store: Store, lead: LeadState, now: float) -> dict:
    published = current_model(store)
    if published is None:
        return {"model_version": None, "fit": lead.fit, "engagement": lead.engagement, "total": lead.total,
                "persona": "", "contributions": [], "note": "no scoring model published; scores are set by API"}
    version, model = published
    adjustments = [(a.score, a.delta, a.reason) for a in SalesStore(store).adjustments(lead.id)]
    card = score(model, lead, now, adjustments)
    return {"model_version": version, "fit": card.fit, "engagement": card.engagement, "total": card.total,
            "persona": card.persona, "contributions": [c.__dict__ for c in card.contributions]}
