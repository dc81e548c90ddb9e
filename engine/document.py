"""The care-model document: what a marketer designs, stored as JSON or YAML and versioned by schema."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from engine.durations import parse_clock, parse_duration
from engine.lifecycle import Stage

SCHEMA_VERSION = 1

StepId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- conditions: a structured tree, evaluated by engine.conditions, never eval'd -------------------------


class ScoreCondition(_Strict):
    type: Literal["score"]
    score: Literal["fit", "engagement", "total"] = "total"
    op: Comparison
    value: float


class AttributeCondition(_Strict):
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


class StageCondition(_Strict):
    type: Literal["stage"]
    op: Literal["in", "not_in", "at_least", "before"] = "in"
    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_for_ordering(self) -> StageCondition:
        if self.op in ("at_least", "before") and len(self.stages) != 1:
            raise ValueError(f"op {self.op!r} compares against exactly one stage")
        return self


class EngagementCondition(_Strict):
    type: Literal["engagement"]
    event: str = Field(min_length=1, description="event type, e.g. 'email.clicked'")
    min_count: int = Field(default=1, ge=1)
    within: Duration | None = None


class AllCondition(_Strict):
    type: Literal["all"]
    conditions: list[Condition] = Field(min_length=1)


class AnyCondition(_Strict):
    type: Literal["any"]
    conditions: list[Condition] = Field(min_length=1)


class NotCondition(_Strict):
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


# --- steps ---------------------------------------------------------------------------------------------


class _Step(_Strict):
    id: StepId
    name: str = ""


class EmailStep(_Step):
    kind: Literal["email"]
    subject: str = Field(min_length=1)
    body: str = Field(min_length=1, description="Jinja template of the message body")
    connector: str = "email"
    next: StepId | None = None


class SocialStep(_Step):
    kind: Literal["social"]
    action: Literal["connect", "message", "like_post", "follow"]
    message: str = ""
    connector: str = "social"
    next: StepId | None = None

    @model_validator(mode="after")
    def _message_needed(self) -> SocialStep:
        if self.action == "message" and not self.message:
            raise ValueError("action 'message' needs a 'message'")
        return self


class CrmStep(_Step):
    kind: Literal["crm"]
    action: Literal["update_field", "create_task", "set_stage", "add_note"]
    field: str | None = None
    value: Any = None
    stage: Stage | None = None
    text: str | None = None
    connector: str = "crm"
    next: StepId | None = None

    @model_validator(mode="after")
    def _params_fit_action(self) -> CrmStep:
        needs = {"update_field": ("field",), "set_stage": ("stage",), "create_task": ("text",), "add_note": ("text",)}
        missing = [name for name in needs[self.action] if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"action {self.action!r} needs {', '.join(repr(m) for m in missing)}")
        return self


class WebhookStep(_Step):
    kind: Literal["webhook"]
    url: str = Field(pattern=r"^https?://\S+$")
    payload: dict[str, Any] = {}
    connector: str = "webhook"
    next: StepId | None = None


class ScoreStep(_Step):
    kind: Literal["score"]
    score: Literal["fit", "engagement"] = "engagement"
    delta: float
    reason: str = ""
    next: StepId | None = None


class WaitStep(_Step):
    kind: Literal["wait"]
    duration: Duration | None = None
    until: datetime | None = None
    time_of_day: Clock | None = Field(default=None, description="next HH:MM in the lead's time zone")
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    next: StepId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> WaitStep:
        given = [n for n in ("duration", "until", "time_of_day") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("a wait needs exactly one of 'duration', 'until' or 'time_of_day'")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("'until' needs a time zone, e.g. 2026-12-01T09:00:00+01:00")
        if not self.days:
            raise ValueError("'days' needs at least one weekday")
        return self


class WaitEventStep(_Step):
    kind: Literal["wait_event"]
    event: str = Field(min_length=1)
    where: dict[str, Any] = Field(default={}, description="event data fields that must be equal")
    timeout: Duration
    on_event: StepId | None = None
    on_timeout: StepId | None = None


class BranchCase(_Strict):
    label: str = ""
    when: Condition
    next: StepId | None = None


class BranchStep(_Step):
    kind: Literal["branch"]
    cases: list[BranchCase] = Field(min_length=1)
    default: StepId | None = None


class SplitVariant(_Strict):
    name: str = Field(min_length=1)
    weight: float = Field(gt=0)
    next: StepId | None = None


class SplitStep(_Step):
    kind: Literal["split"]
    variants: list[SplitVariant] = Field(min_length=1)
    holdout: float = Field(default=0, ge=0, lt=1, description="share of leads kept out, e.g. 0.1")
    holdout_next: StepId | None = None


class HandoverStep(_Step):
    kind: Literal["handover"]
    team: str = "sales"
    routing: Literal["round_robin", "territory", "account_owner"] = "round_robin"
    sla: Duration = "2d"
    note: str = ""
    on_accepted: StepId | None = None
    on_rejected: StepId | None = None
    on_expired: StepId | None = None


class MoveStep(_Step):
    kind: Literal["move"]
    care_model: Slug


class ExitStep(_Step):
    kind: Literal["exit"]
    reason: str = "completed"


Step = Annotated[
    EmailStep
    | SocialStep
    | CrmStep
    | WebhookStep
    | ScoreStep
    | WaitStep
    | WaitEventStep
    | BranchStep
    | SplitStep
    | HandoverStep
    | MoveStep
    | ExitStep,
    Field(discriminator="kind"),
]

# Steps that hand control to time or to someone else; every cycle must pass through one.
WAITING_KINDS = frozenset({"wait", "wait_event", "handover"})


# --- model settings ------------------------------------------------------------------------------------


class EntryRule(_Strict):
    event: str | None = Field(default=None, description="event type that enrols a lead, e.g. 'form.submitted'")
    where: dict[str, Any] = {}
    when: Condition | None = Field(default=None, description="condition the lead must meet to enrol")


class NamedCondition(_Strict):
    name: str = Field(min_length=1)
    when: Condition


class SendWindow(_Strict):
    start: Clock = "08:00"
    end: Clock = "18:00"
    days: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1)

    @model_validator(mode="after")
    def _start_before_end(self) -> SendWindow:
        if parse_clock(self.start) >= parse_clock(self.end):
            raise ValueError("'start' must be earlier than 'end'")
        return self


class FrequencyCap(_Strict):
    max: int = Field(ge=1)
    per: Duration
    channels: list[str] = Field(default_factory=lambda: ["email"], min_length=1)


class Settings(_Strict):
    entry: EntryRule | None = None
    reenrol: Literal["never", "after_exit"] = "never"
    goals: list[NamedCondition] = []
    exit_when: list[NamedCondition] = []
    send_window: SendWindow | None = None
    frequency_cap: FrequencyCap | None = None
    default_timezone: str = "UTC"


class CareModelDocument(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    id: Slug
    name: str = Field(min_length=1)
    description: str = ""
    start: StepId
    settings: Settings = Settings()
    steps: list[Step] = Field(min_length=1)


def edges(step: Any) -> list[tuple[str, str | None]]:
    """The outgoing edges of a step as (field path, target); target None ends the run."""
    match step.kind:
        case "branch":
            return [(f"cases.{i}.next", c.next) for i, c in enumerate(step.cases)] + [("default", step.default)]
        case "split":
            out = [(f"variants.{i}.next", v.next) for i, v in enumerate(step.variants)]
            return out + ([("holdout_next", step.holdout_next)] if step.holdout else [])
        case "wait_event":
            return [("on_event", step.on_event), ("on_timeout", step.on_timeout)]
        case "handover":
            return [("on_accepted", step.on_accepted), ("on_rejected", step.on_rejected),
                    ("on_expired", step.on_expired)]
        case "move" | "exit":
            return []
        case _:
            return [("next", step.next)]


def json_schema() -> dict[str, Any]:
    schema = CareModelDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Nurture care model"
    return schema
