"""Lead scoring: fit (who the lead is) and engagement (what the lead does) kept apart, rules per persona,
engagement that decays with a half-life, and thresholds that move lifecycle stages. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.conditions import evaluate, event_matches
from engine.durations import parse_duration
from engine.fields import Condition, Duration, Slug, compile_condition
from engine.lead import LeadState
from engine.lifecycle import Stage, stage_rank


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Persona(_Strict):
    name: str = Field(min_length=1)
    when: Condition


class FitRule(_Strict):
    name: str = Field(min_length=1)
    when: Condition
    points: float
    personas: list[str] = Field(default=[], description="empty: applies to every persona")


class EngagementRule(_Strict):
    name: str = Field(min_length=1)
    event: str = Field(min_length=1)
    where: dict[str, Any] = {}
    points: float
    personas: list[str] = []


class Threshold(_Strict):
    stage: Stage
    when: Condition
    enrol: list[Slug] = Field(default=[], description="care models to enrol the lead in on reaching the stage")


class ScoringModel(_Strict):
    personas: list[Persona] = []
    fit: list[FitRule] = []
    engagement: list[EngagementRule] = []
    half_life: Duration = "30d"
    thresholds: list[Threshold] = []


@dataclass
class Contribution:
    kind: str  # fit | engagement | adjustment
    rule: str
    points: float
    detail: str


@dataclass
class ScoreCard:
    persona: str
    fit: float
    engagement: float
    contributions: list[Contribution] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.fit + self.engagement


def persona_of(model: ScoringModel, lead: LeadState, now: float) -> str:
    return next((p.name for p in model.personas if evaluate(compile_condition(p.when), lead, now)[0]), "")


def score(model: ScoringModel, lead: LeadState, now: float,
          adjustments: Sequence[tuple[str, float, str]] = ()) -> ScoreCard:
    """The lead's scores as of `now`, with every point explained. `adjustments`: (score, delta, reason)."""
    persona = persona_of(model, lead, now)
    card = ScoreCard(persona, 0.0, 0.0)

    def applies(rule: FitRule | EngagementRule) -> bool:
        return not rule.personas or persona in rule.personas

    for rule in filter(applies, model.fit):
        ok, why = evaluate(compile_condition(rule.when), lead, now)
        if ok:
            card.fit += rule.points
            card.contributions.append(Contribution("fit", rule.name, rule.points, why))
    half_life = parse_duration(model.half_life)
    for engaged in filter(applies, model.engagement):
        for event in lead.events:
            if event.at <= now and event_matches(event.type, event.data, engaged.event, engaged.where):
                days = (now - event.at) / 86400
                points = engaged.points * 0.5 ** ((now - event.at) / half_life)
                card.engagement += points
                card.contributions.append(Contribution(
                    "engagement", engaged.name, round(points, 2),
                    f"{event.type} {days:.1f} days ago: {engaged.points:g} halved every {model.half_life}"))
    for which, delta, reason in adjustments:
        setattr(card, which, getattr(card, which) + delta)
        card.contributions.append(Contribution("adjustment", reason, delta, f"{which} {delta:+g} by a care model"))
    card.fit, card.engagement = round(card.fit, 2), round(card.engagement, 2)
    return card


def reached(model: ScoringModel, lead: LeadState, now: float) -> list[tuple[Threshold, str]]:
    """Thresholds the lead now meets, highest stage last."""
    out = []
    for threshold in model.thresholds:
        ok, why = evaluate(compile_condition(threshold.when), lead, now)
        if ok:
            out.append((threshold, why))
    return sorted(out, key=lambda t: stage_rank(t[0].stage))
