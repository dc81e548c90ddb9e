"""What each step kind is, in one place: its fields as a marketer writes them, its ways out, how a fresh one looks,
its one-line summary on the canvas, and the frozen plan step the compiler makes of it for the workflow.

Adding a kind: a document class and a plan class here, an entry in `KINDS`, and its case in the interpreter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from engine.durations import parse_clock, parse_duration
from engine.fields import WEEKDAYS, Clock, Condition, Duration, Slug, StepId, Strict, Weekday, compile_condition
from engine.lifecycle import Stage

Edge = tuple[str, str | None, str]  # (field path, target step or None for the end, label on the canvas)


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    return "" if value is None else str(value)


# --- the compiled plan steps: plain, frozen data the workflow reads by attribute ----------------------------


@dataclass(frozen=True, kw_only=True)
class PlanStep:
    kind: str
    name: str
    edges: dict[str, str | None]


@dataclass(frozen=True, kw_only=True)
class EmailPlan(PlanStep):
    kind: Literal["email"] = "email"
    subject: str
    body: str
    connector: str = "email"


@dataclass(frozen=True, kw_only=True)
class SocialPlan(PlanStep):
    kind: Literal["social"] = "social"
    action: str
    message: str = ""
    connector: str = "social"


@dataclass(frozen=True, kw_only=True)
class CrmPlan(PlanStep):
    kind: Literal["crm"] = "crm"
    action: str
    field: str | None = None
    value: Any = None
    stage: str | None = None
    text: str | None = None
    connector: str = "crm"


@dataclass(frozen=True, kw_only=True)
class WebhookPlan(PlanStep):
    kind: Literal["webhook"] = "webhook"
    url: str
    payload: dict[str, Any]
    connector: str = "webhook"


@dataclass(frozen=True, kw_only=True)
class ScorePlan(PlanStep):
    kind: Literal["score"] = "score"
    score: str
    delta: float
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class WaitPlan(PlanStep):
    kind: Literal["wait"] = "wait"
    mode: str  # duration | until | time_of_day
    seconds: int = 0
    at: float = 0
    minute: int = 0
    days: list[int] | None = None


@dataclass(frozen=True, kw_only=True)
class WaitEventPlan(PlanStep):
    kind: Literal["wait_event"] = "wait_event"
    event: str
    where: dict[str, Any]
    timeout_seconds: int
    timeout_text: str = ""  # as the marketer wrote it, for the journey
    # Plans compiled before look-back existed carry none of these: "none" keeps their runs as they were.
    look_back: str = "none"  # none | enrolment | window
    look_back_seconds: int = 0


@dataclass(frozen=True, kw_only=True)
class CasePlan:
    label: str
    when: dict[str, Any]
    next: str | None


@dataclass(frozen=True, kw_only=True)
class BranchPlan(PlanStep):
    kind: Literal["branch"] = "branch"
    cases: list[CasePlan]


@dataclass(frozen=True, kw_only=True)
class VariantPlan:
    name: str
    weight: float
    next: str | None


@dataclass(frozen=True, kw_only=True)
class SplitPlan(PlanStep):
    kind: Literal["split"] = "split"
    variants: list[VariantPlan]
    holdout: float = 0


@dataclass(frozen=True, kw_only=True)
class HandoverPlan(PlanStep):
    kind: Literal["handover"] = "handover"
    team: str
    routing: str
    sla_seconds: int
    note: str = ""
    sla_text: str = ""  # as the marketer wrote it, for the journey


@dataclass(frozen=True, kw_only=True)
class MovePlan(PlanStep):
    kind: Literal["move"] = "move"
    care_model: str


@dataclass(frozen=True, kw_only=True)
class ExitPlan(PlanStep):
    kind: Literal["exit"] = "exit"
    reason: str = "completed"


SendingPlan = EmailPlan | SocialPlan | CrmPlan | WebhookPlan
AnyPlanStep = (EmailPlan | SocialPlan | CrmPlan | WebhookPlan | ScorePlan | WaitPlan | WaitEventPlan | BranchPlan
               | SplitPlan | HandoverPlan | MovePlan | ExitPlan)


# --- the steps as a marketer writes them ----------------------------------------------------------------------


class BaseStep(Strict):
    id: StepId
    name: str = ""

    # What a freshly added step holds; `{next}` becomes where the edge it was put on led.
    NEW: ClassVar[dict[str, Any]] = {}
    # Top-level fields that name the next step, with their canvas labels.
    EDGES: ClassVar[tuple[tuple[str, str], ...]] = (("next", ""),)

    @classmethod
    def outgoing(cls, data: dict[str, Any]) -> list[Edge]:
        """The ways out, read leniently from raw (possibly invalid) data, as the designer's canvas needs them."""
        return [(name, data.get(name), label) for name, label in cls.EDGES]

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        """One line for the canvas node."""
        return ""

    def edges(self) -> list[tuple[str, str | None]]:
        return [(path, target) for path, target, _ in self.outgoing(self.model_dump())]

    def compile(self) -> AnyPlanStep:
        raise NotImplementedError

    def _common(self) -> dict[str, Any]:
        return {"name": self.name or self.id, "edges": dict(self.edges())}


class EmailStep(BaseStep):
    kind: Literal["email"]
    subject: str = Field(min_length=1)
    body: str = Field(min_length=1, description="Jinja template of the message body")
    connector: str = "email"
    next: StepId | None = None

    NEW: ClassVar[dict[str, Any]] = {
        "subject": "New email", "body": "<p>Hello {{ lead.first_name | default('there') }},</p>", "next": "{next}"}

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return _text(data, "subject")

    def compile(self) -> EmailPlan:
        return EmailPlan(subject=self.subject, body=self.body, connector=self.connector, **self._common())


class SocialStep(BaseStep):
    kind: Literal["social"]
    action: Literal["connect", "message", "like_post", "follow"]
    message: str = ""
    connector: str = "social"
    next: StepId | None = None

    NEW: ClassVar[dict[str, Any]] = {"action": "connect", "next": "{next}"}

    @model_validator(mode="after")
    def _message_needed(self) -> SocialStep:
        if self.action == "message" and not self.message:
            raise ValueError("action 'message' needs a 'message'")
        return self

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return _text(data, "action")

    def compile(self) -> SocialPlan:
        return SocialPlan(action=self.action, message=self.message, connector=self.connector, **self._common())


class CrmStep(BaseStep):
    kind: Literal["crm"]
    action: Literal["update_field", "create_task", "set_stage", "add_note"]
    field: str | None = None
    value: Any = None
    stage: Stage | None = None
    text: str | None = None
    connector: str = "crm"
    next: StepId | None = None

    NEW: ClassVar[dict[str, Any]] = {"action": "add_note", "text": "Note from the care model", "next": "{next}"}

    @model_validator(mode="after")
    def _params_fit_action(self) -> CrmStep:
        needs = {"update_field": ("field",), "set_stage": ("stage",), "create_task": ("text",), "add_note": ("text",)}
        missing = [name for name in needs[self.action] if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"action {self.action!r} needs {', '.join(repr(m) for m in missing)}")
        return self

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return _text(data, "action")

    def compile(self) -> CrmPlan:
        return CrmPlan(action=self.action, field=self.field, value=self.value, stage=self.stage, text=self.text,
                       connector=self.connector, **self._common())


class WebhookStep(BaseStep):
    kind: Literal["webhook"]
    url: str = Field(pattern=r"^https?://\S+$")
    payload: dict[str, Any] = {}
    connector: str = "webhook"
    next: StepId | None = None

    NEW: ClassVar[dict[str, Any]] = {"url": "https://example.com/hooks/nurture", "next": "{next}"}

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return _text(data, "url")

    def compile(self) -> WebhookPlan:
        return WebhookPlan(url=self.url, payload=dict(self.payload), connector=self.connector, **self._common())


class ScoreStep(BaseStep):
    kind: Literal["score"]
    score: Literal["fit", "engagement"] = "engagement"
    delta: float
    reason: str = ""
    next: StepId | None = None

    NEW: ClassVar[dict[str, Any]] = {"score": "engagement", "delta": 10, "next": "{next}"}

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return f"{data.get('score', 'engagement')} {_text(data, 'delta')}"

    def compile(self) -> ScorePlan:
        return ScorePlan(score=self.score, delta=self.delta, reason=self.reason, **self._common())


class WaitStep(BaseStep):
    kind: Literal["wait"]
    duration: Duration | None = None
    until: datetime | None = None
    time_of_day: Clock | None = Field(default=None, description="next HH:MM in the lead's time zone")
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    next: StepId | None = None

    NEW: ClassVar[dict[str, Any]] = {"duration": "1d", "next": "{next}"}

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

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return _text(data, "duration") or _text(data, "time_of_day") or _text(data, "until")

    def compile(self) -> WaitPlan:
        if self.duration is not None:
            return WaitPlan(mode="duration", seconds=parse_duration(self.duration), **self._common())
        if self.until is not None:
            return WaitPlan(mode="until", at=self.until.timestamp(), **self._common())
        clock = parse_clock(self.time_of_day or "")
        return WaitPlan(mode="time_of_day", minute=clock.hour * 60 + clock.minute,
                        days=[WEEKDAYS.index(d) for d in self.days], **self._common())


class WaitEventStep(BaseStep):
    kind: Literal["wait_event"]
    event: str = Field(min_length=1)
    where: dict[str, Any] = Field(default={}, description="event data fields that must be equal")
    timeout: Duration
    look_back: Literal["enrolment", "none"] | Duration = Field(
        default="enrolment", description="an event that already happened counts too: 'enrolment' (since the lead "
        "entered this care model), a duration such as '7d', or 'none' (only events after the wait begins)")
    on_event: StepId | None = None
    on_timeout: StepId | None = None

    NEW: ClassVar[dict[str, Any]] = {"event": "email.clicked", "timeout": "7d", "on_event": "{next}",
                                     "on_timeout": "{next}"}
    EDGES: ClassVar[tuple[tuple[str, str], ...]] = (("on_event", "event"), ("on_timeout", "timeout"))

    @classmethod
    def outgoing(cls, data: dict[str, Any]) -> list[Edge]:
        return [("on_event", data.get("on_event"), str(data.get("event", "event"))),
                ("on_timeout", data.get("on_timeout"), "timeout")]

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return f"{data.get('event')} ≤ {data.get('timeout')}"

    def compile(self) -> WaitEventPlan:
        window = self.look_back not in ("enrolment", "none")
        return WaitEventPlan(event=self.event, where=dict(self.where), timeout_seconds=parse_duration(self.timeout),
                             timeout_text=str(self.timeout), look_back="window" if window else str(self.look_back),
                             look_back_seconds=parse_duration(self.look_back) if window else 0, **self._common())


class BranchCase(Strict):
    label: str = ""
    when: Condition
    next: StepId | None = None


class BranchStep(BaseStep):
    kind: Literal["branch"]
    cases: list[BranchCase] = Field(min_length=1)
    default: StepId | None = None

    NEW: ClassVar[dict[str, Any]] = {
        "cases": [{"label": "engaged", "when": {"type": "score", "score": "total", "op": "gte", "value": 50},
                   "next": "{next}"}], "default": "{next}"}
    EDGES: ClassVar[tuple[tuple[str, str], ...]] = (("default", "otherwise"),)

    @classmethod
    def outgoing(cls, data: dict[str, Any]) -> list[Edge]:
        cases = data.get("cases") if isinstance(data.get("cases"), list) else []
        out = [(f"cases.{i}.next", c.get("next"), c.get("label") or f"case {i + 1}")
               for i, c in enumerate(cases or []) if isinstance(c, dict)]
        return [*out, *super().outgoing(data)]

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return f"{len(cls.outgoing(data)) - 1} case(s)"

    def compile(self) -> BranchPlan:
        return BranchPlan(cases=[CasePlan(label=c.label or f"case {i + 1}", when=compile_condition(c.when), next=c.next)
                                 for i, c in enumerate(self.cases)], **self._common())


class SplitVariant(Strict):
    name: str = Field(min_length=1)
    weight: float = Field(gt=0, description="relative to the other variants: weights 1 and 3 give 25% and 75%")
    next: StepId | None = None


class SplitStep(BaseStep):
    kind: Literal["split"]
    variants: list[SplitVariant] = Field(min_length=1)
    holdout: float = Field(default=0, ge=0, lt=1, description="share of leads kept out, e.g. 0.1")
    holdout_next: StepId | None = None

    NEW: ClassVar[dict[str, Any]] = {
        "variants": [{"name": "A", "weight": 1, "next": "{next}"}, {"name": "B", "weight": 1, "next": "{next}"}],
        "holdout": 0}
    EDGES: ClassVar[tuple[tuple[str, str], ...]] = (("holdout_next", "holdout"),)

    @classmethod
    def outgoing(cls, data: dict[str, Any]) -> list[Edge]:
        variants = data.get("variants") if isinstance(data.get("variants"), list) else []
        out = [(f"variants.{i}.next", v.get("next"), str(v.get("name", f"variant {i + 1}")))
               for i, v in enumerate(variants or []) if isinstance(v, dict)]
        return [*out, *super().outgoing(data)] if data.get("holdout") else out

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return f"{len(data.get('variants') or [])} variants"

    def compile(self) -> SplitPlan:
        return SplitPlan(variants=[VariantPlan(name=v.name, weight=v.weight, next=v.next) for v in self.variants],
                         holdout=self.holdout, **self._common())


class HandoverStep(BaseStep):
    kind: Literal["handover"]
    team: str = "sales"
    routing: Literal["round_robin", "territory", "account_owner"] = "round_robin"
    sla: Duration | None = Field(default=None, description="how long sales has to accept or reject, e.g. '2d'")
    note: str = ""
    on_accepted: StepId | None = None
    on_rejected: StepId | None = None
    on_expired: StepId | None = None

    NEW: ClassVar[dict[str, Any]] = {"team": "sales", "routing": "round_robin", "sla": "2d", "on_accepted": "{next}",
                                     "on_rejected": "{next}", "on_expired": "{next}"}
    EDGES: ClassVar[tuple[tuple[str, str], ...]] = (
        ("on_accepted", "accepted"), ("on_rejected", "rejected"), ("on_expired", "expired"))

    @model_validator(mode="after")
    def _sla_given(self) -> HandoverStep:
        if self.sla is None:
            raise ValueError("a handover needs an 'sla': how long sales has to accept or reject before it expires, "
                             "e.g. '2d'")
        return self

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return str(data.get("team", "sales"))

    def compile(self) -> HandoverPlan:
        return HandoverPlan(team=self.team, routing=self.routing, sla_seconds=parse_duration(self.sla or 0),
                            sla_text=str(self.sla), note=self.note, **self._common())


class MoveStep(BaseStep):
    kind: Literal["move"]
    care_model: Slug

    NEW: ClassVar[dict[str, Any]] = {"care_model": "choose-a-care-model"}
    EDGES: ClassVar[tuple[tuple[str, str], ...]] = ()

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return f"→ {data.get('care_model')}"

    def compile(self) -> MovePlan:
        return MovePlan(care_model=self.care_model, **self._common())


class ExitStep(BaseStep):
    kind: Literal["exit"]
    reason: str = "completed"

    NEW: ClassVar[dict[str, Any]] = {"reason": "completed"}
    EDGES: ClassVar[tuple[tuple[str, str], ...]] = ()

    @classmethod
    def summary(cls, data: dict[str, Any]) -> str:
        return _text(data, "reason")

    def compile(self) -> ExitPlan:
        return ExitPlan(reason=self.reason, **self._common())


Step = Annotated[
    EmailStep | SocialStep | CrmStep | WebhookStep | ScoreStep | WaitStep | WaitEventStep | BranchStep | SplitStep
    | HandoverStep | MoveStep | ExitStep,
    Field(discriminator="kind"),
]
KINDS: dict[str, type[BaseStep]] = {cls.model_fields["kind"].annotation.__args__[0]: cls  # type: ignore[union-attr]
                                    for cls in (EmailStep, SocialStep, CrmStep, WebhookStep, ScoreStep, WaitStep,
                                                WaitEventStep, BranchStep, SplitStep, HandoverStep, MoveStep,
                                                ExitStep)}
PLAN_KINDS: dict[str, type[PlanStep]] = {
    "email": EmailPlan, "social": SocialPlan, "crm": CrmPlan, "webhook": WebhookPlan, "score": ScorePlan,
    "wait": WaitPlan, "wait_event": WaitEventPlan, "branch": BranchPlan, "split": SplitPlan,
    "handover": HandoverPlan, "move": MovePlan, "exit": ExitPlan,
}
# Steps that hand control to time or to someone else; every cycle must pass through one.
WAITING_KINDS = frozenset({"wait", "wait_event", "handover"})
# Every top-level field, of any kind, that names the next step.
EDGE_FIELDS = frozenset({"next", *(name for cls in KINDS.values() for name, _ in cls.EDGES)})
