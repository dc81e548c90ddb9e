"""The compiled plan: frozen, plain data that travels through Temporal unchanged and that the workflow reads by
attribute. It never holds durations, clocks or time-zone names to parse: the compiler did that once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from engine.steps import PLAN_KINDS, AnyPlanStep, CasePlan, VariantPlan


@dataclass(frozen=True, kw_only=True)
class EntryPlan:
    event: str | None = None
    where: dict[str, Any] = field(default_factory=dict)
    when: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class RulePlan:
    name: str
    when: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class WindowPlan:
    start_minute: int
    end_minute: int
    days: list[int]


@dataclass(frozen=True, kw_only=True)
class CapPlan:
    max: int
    per_seconds: int
    channels: list[str]
    on_cap: str = "skip"  # skip | defer


@dataclass(frozen=True, kw_only=True)
class PlanSettings:
    entry: EntryPlan | None = None
    reenrol: str = "never"
    goals: list[RulePlan] = field(default_factory=list)
    exit_when: list[RulePlan] = field(default_factory=list)
    send_window: WindowPlan | None = None
    frequency_cap: CapPlan | None = None
    default_timezone: str = "UTC"


@dataclass(frozen=True)
class Plan:
    care_model: str
    name: str
    version: int
    hash: str
    start: str
    steps: dict[str, AnyPlanStep]
    settings: PlanSettings = field(default_factory=PlanSettings)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return asdict(plan)


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """A plan stored as JSON (the app's database) back as typed data; Temporal's converter does the same by type."""
    s = data.get("settings") or {}
    settings = PlanSettings(
        entry=entry_of(data), reenrol=s.get("reenrol", "never"),
        goals=[RulePlan(**g) for g in s.get("goals", [])], exit_when=[RulePlan(**g) for g in s.get("exit_when", [])],
        send_window=WindowPlan(**s["send_window"]) if s.get("send_window") else None,
        frequency_cap=CapPlan(**s["frequency_cap"]) if s.get("frequency_cap") else None,
        default_timezone=s.get("default_timezone", "UTC"),
    )
    steps = {step_id: step_from_dict(raw) for step_id, raw in data["steps"].items()}
    return Plan(care_model=data["care_model"], name=data["name"], version=data["version"], hash=data["hash"],
                start=data["start"], steps=steps, settings=settings)


def entry_of(data: dict[str, Any]) -> EntryPlan | None:
    """A stored plan's entry rule alone: what every incoming event is matched against, without reading the steps."""
    entry = (data.get("settings") or {}).get("entry")
    return EntryPlan(**entry) if entry else None


def step_from_dict(raw: dict[str, Any]) -> AnyPlanStep:
    values = dict(raw)
    if "cases" in values:
        values["cases"] = [CasePlan(**c) for c in values["cases"]]
    if "variants" in values:
        values["variants"] = [VariantPlan(**v) for v in values["variants"]]
    return PLAN_KINDS[values["kind"]](**values)  # type: ignore[return-value]
