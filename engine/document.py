"""The care-model document: what a marketer designs, stored as JSON or YAML and versioned by schema.

Its parts live beside it: the small types and conditions in `engine.fields`, each step kind in `engine.steps`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from engine.durations import parse_clock
from engine.fields import WEEKDAYS, Clock, Condition, Duration, Slug, StepId, Strict, Weekday
from engine.steps import BaseStep, Step

SCHEMA_VERSION: Literal[1] = 1


# --- model settings ------------------------------------------------------------------------------------


class EntryRule(Strict):
    event: str | None = Field(default=None, description="event type that enrols a lead, e.g. 'form.submitted'")
    where: dict[str, Any] = {}
    when: Condition | None = Field(default=None, description="condition the lead must meet to enrol")


class NamedCondition(Strict):
    name: str = Field(min_length=1)
    when: Condition


class SendWindow(Strict):
    start: Clock = "08:00"
    end: Clock = "18:00"
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)

    @model_validator(mode="after")
    def _start_before_end(self) -> SendWindow:
        if parse_clock(self.start) >= parse_clock(self.end):
            raise ValueError("'start' must be earlier than 'end'")
        return self


class FrequencyCap(Strict):
    max: int = Field(ge=1)
    per: Duration
    channels: list[str] = Field(default_factory=lambda: ["email"], min_length=1)
    on_cap: Literal["skip", "defer"] = Field(
        default="skip", description="a message over the cap: skip it for good, or defer it until the cap allows "
        "(then the send window applies again)")


class Settings(Strict):
    entry: EntryRule | None = None
    reenrol: Literal["never", "after_exit"] = "never"
    goals: list[NamedCondition] = []
    exit_when: list[NamedCondition] = []
    send_window: SendWindow | None = None
    frequency_cap: FrequencyCap | None = None
    default_timezone: str = "UTC"


class CareModelDocument(Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    id: Slug
    name: str = Field(min_length=1)
    description: str = ""
    start: StepId
    settings: Settings = Settings()
    steps: list[Step] = Field(min_length=1)


def edges(step: BaseStep) -> list[tuple[str, str | None]]:
    """The outgoing edges of a step as (field path, target); target None ends the run."""
    return step.edges()


def json_schema() -> dict[str, Any]:
    schema = CareModelDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Nurture care model"
    return schema
