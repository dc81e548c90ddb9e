"""Evaluates compiled condition trees against a lead, saying why the answer is what it is."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from engine.lead import LeadState
from engine.lifecycle import stage_rank

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
    "eq": operator.eq, "ne": operator.ne,
}
_SYMBOL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "==", "ne": "!="}


def evaluate(cond: dict[str, Any], lead: LeadState, now: float) -> tuple[bool, str]:
    """(result, explanation) for a condition as the compiler emits it."""
    kind = cond["type"]
    if kind == "all":
        results = [evaluate(c, lead, now) for c in cond["conditions"]]
        failed = [why for ok, why in results if not ok]
        return (not failed, " and ".join(why for _, why in results) if not failed else failed[0])
    if kind == "any":
        results = [evaluate(c, lead, now) for c in cond["conditions"]]
        passed = [why for ok, why in results if ok]
        return (bool(passed), passed[0] if passed else " and ".join(why for _, why in results))
    if kind == "not":
        ok, why = evaluate(cond["condition"], lead, now)
        return (not ok, f"not ({why})")
    if kind == "score":
        actual = {"fit": lead.fit, "engagement": lead.engagement, "total": lead.total}[cond["score"]]
        ok = _COMPARE[cond["op"]](actual, cond["value"])
        return ok, f"{cond['score']} score {actual:g} {_SYMBOL[cond['op']]} {cond['value']:g} is {_word(ok)}"
    if kind == "attribute":
        return _attribute(cond, lead)
    if kind == "stage":
        return _stage(cond, lead.stage)
    if kind == "engagement":
        since = now - cond["within"] if cond.get("within") else float("-inf")
        count = sum(1 for e in lead.events if e.type == cond["event"] and since <= e.at <= now)
        ok = count >= cond["min_count"]
        window = f" in the last {cond['within_text']}" if cond.get("within") else ""
        return ok, f"{count} x {cond['event']}{window} (needs {cond['min_count']}) is {_word(ok)}"
    raise ValueError(f"unknown condition type {kind!r}")


def _attribute(cond: dict[str, Any], lead: LeadState) -> tuple[bool, str]:
    name, op, want = cond["name"], cond["op"], cond.get("value")
    present = name in lead.attributes
    have = lead.attributes.get(name)
    if op in ("exists", "missing"):
        ok = present if op == "exists" else not present
        return ok, f"attribute {name} {'is set' if present else 'is not set'}"
    if op in ("in", "not_in"):
        ok = (have in (want or ())) == (op == "in")
        return ok, f"{name}={have!r} {'in' if op == 'in' else 'not in'} {want!r} is {_word(ok)}"
    if op == "contains":
        ok = present and isinstance(have, str | list) and want in have
        return ok, f"{name}={have!r} contains {want!r} is {_word(ok)}"
    try:
        ok = present and _COMPARE[op](have, want)
    except TypeError:
        ok = False
    return ok, f"{name}={have!r} {_SYMBOL[op]} {want!r} is {_word(ok)}"


def _stage(cond: dict[str, Any], stage: str) -> tuple[bool, str]:
    op, stages = cond["op"], cond["stages"]
    if op == "in":
        ok = stage in stages
    elif op == "not_in":
        ok = stage not in stages
    elif op == "at_least":
        ok = stage_rank(stage) >= stage_rank(stages[0])
    else:
        ok = stage_rank(stage) < stage_rank(stages[0])
    return ok, f"stage {stage} {op.replace('_', ' ')} {', '.join(stages)} is {_word(ok)}"


def _word(ok: bool) -> str:
    return "true" if ok else "false"


def event_matches(event_type: str, event_data: dict[str, Any], want_type: str, where: dict[str, Any]) -> bool:
    return event_type == want_type and all(event_data.get(k) == v for k, v in where.items())
