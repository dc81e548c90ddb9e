"""Segments: a saved condition over leads (the same condition tree as branches), checked and compiled here. Pure."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from engine.fields import Condition, compile_condition

_CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)
JOINED, LEFT = "segment.joined", "segment.left"


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1, max_length=200)
    condition: dict[str, Any] = Field(description="a condition as branches write it: score, attribute, stage, "
                                                  "engagement, or all / any / not of them")


def compile_segment(condition: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """(the compiled condition, or None with each problem named by where it is: 'condition.conditions.1.value')."""
    try:
        return compile_condition(_CONDITION.validate_python(condition)), []
    except ValidationError as exc:
        return None, [f"{'.'.join(['condition', *map(str, e['loc'])])}: {e['msg']}" for e in exc.errors()]


def uses_events(cond: dict[str, Any]) -> bool:
    """Whether answering needs the leads' timelines (engagement), not only their profiles."""
    if cond["type"] in ("all", "any"):
        return any(uses_events(c) for c in cond["conditions"])
    if cond["type"] == "not":
        return uses_events(cond["condition"])
    return cond["type"] == "engagement"
