"""Scores a sales rep can trust: fit and engagement apart, per-persona rules, decay, and every point explained."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.lead import LeadEvent, LeadState
from engine.scoring import ScoringModel, reached, score

DAY = 86400.0
MODEL = ScoringModel.model_validate({
    "personas": [{"name": "executive", "when": {"type": "attribute", "name": "seniority", "op": "in",
                                                "value": ["vp", "c-level"]}}],
    "fit": [
        {"name": "target industry", "when": {"type": "attribute", "name": "industry", "op": "eq", "value": "saas"},
         "points": 15},
        {"name": "executive title", "when": {"type": "attribute", "name": "seniority", "op": "exists"},
         "points": 20, "personas": ["executive"]},
    ],
    "engagement": [
        {"name": "clicked an email", "event": "email.clicked", "points": 10},
        {"name": "visited pricing", "event": "page.visited", "where": {"page": "/pricing"}, "points": 25,
         "personas": ["executive"]},
    ],
    "half_life": "10d",
    "thresholds": [
        {"stage": "mql", "when": {"type": "score", "score": "total", "op": "gte", "value": 50}},
        {"stage": "sql", "when": {"type": "score", "score": "total", "op": "gte", "value": 90}},
    ],
})


def lead(**attributes: str) -> LeadState:
    return LeadState(id="l", attributes=attributes, events=[
        LeadEvent("1", "email.clicked", 0.0), LeadEvent("2", "page.visited", 10 * DAY, {"page": "/pricing"}),
        LeadEvent("3", "page.visited", 10 * DAY, {"page": "/blog"})])


def test_fit_and_engagement_are_kept_apart_and_rules_follow_the_persona() -> None:
    executive = score(MODEL, lead(industry="saas", seniority="vp"), now=10 * DAY)
    engineer = score(MODEL, lead(industry="saas"), now=10 * DAY)
    assert (executive.persona, executive.fit) == ("executive", 35)
    assert (engineer.persona, engineer.fit) == ("", 15)
    assert executive.engagement == 5 + 25, "the click has halved in ten days; the pricing visit is fresh"
    assert engineer.engagement == 5, "pricing visits count for the executive persona only"


def test_engagement_decays_with_the_half_life() -> None:
    assert score(MODEL, lead(), now=30 * DAY).engagement == pytest.approx(10 * 0.5**3, abs=0.01)


def test_every_point_is_explained() -> None:
    card = score(MODEL, lead(industry="saas", seniority="vp"), now=10 * DAY, adjustments=[("fit", 5, "webinar")])
    lines = [(c.kind, c.rule, c.points) for c in card.contributions]
    assert ("fit", "target industry", 15) in lines and ("fit", "executive title", 20) in lines
    assert ("engagement", "clicked an email", 5) in lines and ("adjustment", "webinar", 5) in lines
    assert card.total == sum(p for _, _, p in lines)
    click = next(c for c in card.contributions if c.rule == "clicked an email")
    assert click.detail == "email.clicked 10.0 days ago: 10 halved every 10d"


def test_thresholds_are_reported_lowest_stage_first() -> None:
    hot = LeadState(id="l", fit=30, engagement=25)
    assert [t.stage for t, _ in reached(MODEL, hot, 0)] == ["mql"]
    hot.engagement = 65
    assert [t.stage for t, _ in reached(MODEL, hot, 0)] == ["mql", "sql"]


def test_a_bad_scoring_model_names_the_field() -> None:
    with pytest.raises(ValidationError) as raised:
        ScoringModel.model_validate({"fit": [{"name": "x", "points": "many", "when": {"type": "stage",
                                                                                        "stages": ["mql"]}}]})
    assert raised.value.errors()[0]["loc"] == ("fit", 0, "points")
