"""The small types a care-model document is built from: ids, durations, clocks, weekdays and conditions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from engine.durations import format_duration, parse_clock, parse_duration
from engine.lifecycle import Stage

STEP_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
StepId = Annotated[str, Field(pattern=STEP_ID_PATTERN)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Comparison = Literal["gt", "gte", "lt", "lte", "eq", "ne"]


def _duration(value: str | int) -> str | int:
    parse_duration(value)
    return value


def _clock(value: str) -> str:
    parse_clock(value)
    return value


Duration = Annotated[str | int, AfterValidator(_duration)]
Clock = Annotated[str, AfterValidator(_clock)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- conditions: a structured tree, evaluated by engine.conditions, never eval'd -------------------------


class ScoreCondition(Strict):
    type: Literal["score"]
    score: Literal["fit", "engagement", "total"] = "total"
    op: Comparison
    value: float


class AttributeCondition(Strict):
    type: Literal["attribute"]
    name: str = Field(min_length=1)
    op: Literal["eq", "ne", "in", "not_in", "contains", "exists", "missing", "gt", "gte", "lt", "lte"]
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> AttributeCondition:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs 'value' to be a list")
        if self.op in ("exists", "missing") and self.value is not None:
            raise ValueError(f"op {self.op!r} takes no 'value'")
        if self.op not in ("exists", "missing", "in", "not_in") and self.value is None:
            raise ValueError(f"op {self.op!r} needs a 'value'")
        return self


class StageCondition(Strict):
    type: Literal["stage"]
    op: Literal["in", "not_in", "at_least", "before"] = "in"
    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_for_ordering(self) -> StageCondition:
        if self.op in ("at_least", "before") and len(self.stages) != 1:
            raise ValueError(f"op {self.op!r} compares against exactly one stage")
        return self


class EngagementCondition(Strict):
    type: Literal["engagement"]
    event: str = Field(min_length=1, description="event type, e.g. 'email.clicked'")
    min_count: int = Field(default=1, ge=1)
    within: Duration | None = None


class AllCondition(Strict):
    type: Literal["all"]
    conditions: list[Condition] = Field(min_length=1)


class AnyCondition(Strict):
    type: Literal["any"]
    conditions: list[Condition] = Field(min_length=1)


class NotCondition(Strict):
    type: Literal["not"]
    condition: Condition


Condition = Annotated[
    ScoreCondition
    | AttributeCondition
    | StageCondition
    | EngagementCondition
    | AllCondition
    | AnyCondition
    | NotCondition,
    Field(discriminator="type"),
]


def compile_condition(cond: Any) -> dict[str, Any]:
    """A condition as the plan carries it: plain data, with durations already in seconds."""
    return _normalise(cond.model_dump(mode="json"))


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    if data["type"] in ("all", "any"):
        data["conditions"] = [_normalise(c) for c in data["conditions"]]
    elif data["type"] == "not":
        data["condition"] = _normalise(data["condition"])
    elif data["type"] == "engagement" and data.get("within") is not None:
        seconds = parse_duration(data["within"])
        data["within"], data["within_text"] = seconds, format_duration(seconds)
    return data
