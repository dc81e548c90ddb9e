"""The pure parts: compiler, conditions, calendar arithmetic, stable split assignment."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from engine.changes import compare
from engine.compiler import compile_text
from engine.conditions import evaluate
from engine.document import json_schema
from engine.durations import parse_duration
from engine.lead import LeadEvent, LeadState
from engine.plan import CapPlan, WindowPlan, plan_from_dict, plan_to_dict
from engine.schedule import choose_variant, next_time_of_day, next_window_open
from engine.steps import SplitPlan, VariantPlan, WaitEventPlan, WaitPlan
from engine.validator import DocumentError, load_or_raise

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_compiled_plan_is_typed_data_with_durations_resolved() -> None:
    plan = compile_text((EXAMPLES / "welcome-nurture.yaml").read_text(), version=3)
    assert plan.version == 3 and plan.start == "welcome"
    pause, morning = plan.steps["pause-2d"], plan.steps["morning"]
    assert isinstance(pause, WaitPlan) and (pause.mode, pause.seconds) == ("duration", 2 * 86400)
    assert isinstance(morning, WaitPlan) and (morning.mode, morning.minute, morning.days) == ("time_of_day", 540,
                                                                                               [1, 2, 3])
    assert isinstance(plan.steps["await-click"], WaitEventPlan) and plan.steps["await-click"].timeout_seconds == 432000
    assert plan.settings.frequency_cap == CapPlan(max=3, per_seconds=7 * 86400, channels=["email"])
    stored = json.loads(json.dumps(plan_to_dict(plan)))  # kept in the database as JSON, travels through Temporal so
    assert plan_from_dict(stored) == plan, "the stored JSON reads back as the same typed plan"


def test_plan_hash_is_stable_and_changes_with_content() -> None:
    text = (EXAMPLES / "welcome-nurture.yaml").read_text()
    assert compile_text(text).hash == compile_text(text).hash
    assert compile_text(text).hash != compile_text(text.replace("duration: 2d", "duration: 3d")).hash


def test_compile_refuses_a_bad_document_with_every_problem() -> None:
    with pytest.raises(DocumentError) as raised:
        compile_text("id: x\nname: X\nstart: nope\nsteps:\n  - {id: a, kind: exit}\n")
    assert "start step 'nope' does not exist" in str(raised.value)


def test_json_schema_is_exported_for_editors() -> None:
    schema = json_schema()
    assert schema["title"] == "Nurture care model"
    kinds = {d["properties"]["kind"]["const"] for d in schema["$defs"].values() if "kind" in d.get("properties", {})}
    assert {"email", "wait", "wait_event", "branch", "split", "handover", "move", "exit"} <= kinds


@pytest.mark.parametrize(("text", "seconds"), [("3d", 259200), ("1w2d", 777600), ("90m", 5400), ("P1DT2H", 93600)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_conditions_explain_themselves() -> None:
    lead = LeadState(id="l", fit=40, engagement=25, stage="mql", attributes={"industry": "saas"},
                     events=[LeadEvent("e1", "email.clicked", ts("2026-01-10T00:00:00+00:00"))])
    now = ts("2026-01-12T00:00:00+00:00")
    ok, why = evaluate({"type": "score", "score": "total", "op": "gte", "value": 60}, lead, now)
    assert ok and why == "total score ≥ 60: yes (65)"
    ok, _ = evaluate({"type": "engagement", "event": "email.clicked", "min_count": 1, "within": 86400,
                      "within_text": "1d"}, lead, now)
    assert not ok, "the click was two days ago"
    ok, why = evaluate({"type": "all", "conditions": [
        {"type": "stage", "op": "at_least", "stages": ["mql"]},
        {"type": "attribute", "name": "industry", "op": "in", "value": ["saas", "fintech"]},
    ]}, lead, now)
    assert ok and why == "stage is at least mql: yes (mql) and industry is one of saas, fintech: yes (saas)"
    ok, why = evaluate({"type": "not", "condition": {"type": "attribute", "name": "country", "op": "exists"}},
                       lead, now)
    assert ok and why == "not (country is set: no (not set))"


def test_time_of_day_is_in_the_leads_zone_across_daylight_saving() -> None:
    # 2026-03-29 is the EU switch to summer time: 09:00 in Berlin is 07:00 UTC from then on.
    sat_noon = ts("2026-03-28T12:00:00+00:00")
    monday_9 = next_time_of_day(sat_noon, "Europe/Berlin", 9 * 60, [0])
    assert datetime.fromtimestamp(monday_9, UTC).isoformat() == "2026-03-30T07:00:00+00:00"
    same_day = next_time_of_day(ts("2026-03-30T06:00:00+00:00"), "America/New_York", 9 * 60, list(range(7)))
    assert datetime.fromtimestamp(same_day, UTC).isoformat() == "2026-03-30T13:00:00+00:00"


def test_send_window_holds_until_it_opens() -> None:
    window = WindowPlan(start_minute=8 * 60, end_minute=18 * 60, days=[0, 1, 2, 3, 4])
    assert next_window_open(ts("2026-11-23T10:00:00+00:00"), "UTC", window) is None  # Monday 10:00
    friday_night = ts("2026-11-27T19:00:00+00:00")
    opens = next_window_open(friday_night, "UTC", window)
    assert datetime.fromtimestamp(opens, UTC).isoformat() == "2026-11-30T08:00:00+00:00"


def test_split_is_sticky_and_follows_weights() -> None:
    step = SplitPlan(name="split", edges={}, holdout=0.1, variants=[VariantPlan(name="a", weight=3, next="x"),
                                                                    VariantPlan(name="b", weight=1, next="y")])
    picks = [choose_variant(f"lead-{i}", "m", step, "split") for i in range(4000)]
    assert picks[:50] == [choose_variant(f"lead-{i}", "m", step, "split") for i in range(50)]
    held = sum(p is None for p in picks) / len(picks)
    a = sum(p is not None and p.name == "a" for p in picks) / len(picks)
    assert 0.08 < held < 0.12
    assert 0.63 < a < 0.72  # 0.9 * 3/4


def test_versions_compare_by_meaning_not_by_formatting() -> None:
    raw = yaml.safe_load((EXAMPLES / "executive-nurture.yaml").read_text())
    published = load_or_raise((EXAMPLES / "executive-nurture.yaml").read_text()).model_dump(mode="json")
    assert compare(published, raw).none, "defaults written out, 20.0 against 20: no change"
    edited = copy.deepcopy(raw)
    edited["steps"][0]["subject"] = "A new subject"
    changes = compare(published, edited)
    assert [(c.step, c.fields, c.rewired) for c in changes.changed] == [("intro", ["subject"], [])]
    assert not (changes.added or changes.removed or changes.settings or changes.start)
