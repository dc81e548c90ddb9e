"""A sample lead that a care model's entry rule lets in, so a simulation works out of the box."""

from __future__ import annotations

from typing import Any

from engine.document import CareModelDocument
from engine.fields import AllCondition, AnyCondition, AttributeCondition, ScoreCondition, StageCondition


def fitting(doc: CareModelDocument) -> dict[str, Any]:
    """Lead fields (`attributes`, `stage`, `fit`) that satisfy the entry rule's simple conditions; {} when none."""
    entry = doc.settings.entry
    out: dict[str, Any] = {}
    if entry is not None and entry.when is not None:
        _meet(entry.when, out)
    return out


def _meet(cond: Any, out: dict[str, Any]) -> None:
    if isinstance(cond, AllCondition):
        for inner in cond.conditions:
            _meet(inner, out)
    elif isinstance(cond, AnyCondition):
        _meet(cond.conditions[0], out)
    elif isinstance(cond, AttributeCondition) and cond.op in ("eq", "in", "exists"):
        value = cond.value[0] if cond.op == "in" and isinstance(cond.value, list) else cond.value
        out.setdefault("attributes", {})[cond.name] = True if cond.op == "exists" else value
    elif isinstance(cond, StageCondition) and cond.op in ("in", "at_least"):
        out["stage"] = cond.stages[0]
    elif isinstance(cond, ScoreCondition) and cond.op in ("gt", "gte", "eq"):
        out["engagement" if cond.score == "engagement" else "fit"] = cond.value + (1 if cond.op == "gt" else 0)
