"""What a running care model knows about its lead: a plain, serialisable snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.lifecycle import Stage

# A run keeps this many engagement events; older ones have served their conditions' windows.
MAX_EVENTS = 200


@dataclass
class LeadEvent:
    id: str
    type: str
    at: float  # epoch seconds
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class LeadState:
    id: str
    email: str = ""
    timezone: str = ""  # empty: the care model's default time zone applies
    stage: str = "suspect"
    fit: float = 0.0
    engagement: float = 0.0
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[LeadEvent] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.fit + self.engagement

    def remember(self, event: LeadEvent) -> None:
        self.events.append(event)
        del self.events[:-MAX_EVENTS]

    def apply_update(self, data: dict[str, Any]) -> None:
        """A 'lead.updated' event: new attribute values, stage or scores from the CRM or the scorer."""
        self.attributes.update(data.get("attributes", {}))
        for name in ("stage", "timezone", "email"):
            if name in data:
                setattr(self, name, data[name])
        for name in ("fit", "engagement"):
            if name in data:
                setattr(self, name, float(data[name]))


class LeadIn(BaseModel):
    """A lead as integrators and sample files describe it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    email: str = Field(default="", pattern=r"^$|^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$",
                       description="one address (no lists); empty when unknown")
    timezone: str = Field(default="", description="IANA zone; empty uses each care model's default")
    stage: Stage = "suspect"
    fit: float = 0.0
    engagement: float = 0.0
    attributes: dict[str, Any] = {}
    unsubscribed: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not value:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like 'America/New_York')") from None
        return value

    def to_state(self) -> LeadState:
        return LeadState(id=self.id, email=self.email, timezone=self.timezone, stage=self.stage, fit=self.fit,
                         engagement=self.engagement, attributes=dict(self.attributes))
