"""Evaluates compiled condition trees against a lead, saying why the answer is what it is."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from engine.durations import parse_duration
from engine.lead import LeadState
from engine.lifecycle import stage_rank

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
    "eq": operator.eq, "ne": operator.ne,
}


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
        return _said(cond, _COMPARE[cond["op"]](actual, cond["value"]), f"{actual:g}")
    if kind == "attribute":
        return _attribute(cond, lead)
    if kind == "stage":
        return _stage(cond, lead.stage)
    if kind == "engagement":
        since = now - cond["within"] if cond.get("within") else float("-inf")
        count = sum(1 for e in lead.events if e.type == cond["event"] and since <= e.at <= now)
        return _said(cond, count >= cond["min_count"], f"{count} so far")
    raise ValueError(f"unknown condition type {kind!r}")


def _said(cond: dict[str, Any], ok: bool, actual: str) -> tuple[bool, str]:
    """The answer in the designer's own wording, with what the lead actually had: "total score ≥ 60: yes (65)"."""
    return ok, f"{describe(cond)}: {_word(ok)} ({actual})"


def _attribute(cond: dict[str, Any], lead: LeadState) -> tuple[bool, str]:
    name, op, want = cond["name"], cond["op"], cond.get("value")
    present = name in lead.attributes
    have = lead.attributes.get(name)
    if op in ("exists", "missing"):
        ok = present if op == "exists" else not present
    elif op in ("in", "not_in"):
        ok = (have in (want or ())) == (op == "in")
    elif op == "contains":
        ok = present and isinstance(have, str | list) and want in have
    else:
        try:
            ok = present and _COMPARE[op](have, want)
        except TypeError:
            ok = False
    return _said(cond, ok, _value(have) if present else "not set")


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
    return _said(cond, ok, stage)


def _word(ok: bool) -> str:
    return "yes" if ok else "no"


def event_matches(event_type: str, event_data: dict[str, Any], want_type: str, where: dict[str, Any]) -> bool:
    return event_type == want_type and all(event_data.get(k) == v for k, v in where.items())


# --- the sentence a condition means, as the designer shows it beside each row -----------------------------

_OP_WORDS = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "eq": "=", "ne": "≠"}
_EVENT_PHRASES = {
    "email.clicked": "clicked an email", "email.opened": "opened an email", "email.bounced": "had an email bounce",
    "email.unsubscribed": "unsubscribed", "form.submitted": "submitted a form", "page.viewed": "viewed a page",
    "webinar.registered": "registered for a webinar", "webinar.attended": "attended a webinar",
}


def describe(cond: Any) -> str:
    """A condition as a marketer reads it ("total score ≥ 60 and clicked an email at least once in the last 14d").
    Lenient: a draft's half-built condition still reads, with '?' where a part is missing."""
    if not isinstance(cond, dict):
        return "?"
    kind = cond.get("type")
    if kind in ("all", "any"):
        raw = cond.get("conditions")
        parts = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
        words = [f"({describe(c)})" if c.get("type") in ("all", "any") and len(c.get("conditions") or []) > 1
                 else describe(c) for c in parts]
        return f" {'and' if kind == 'all' else 'or'} ".join(words) or "?"
    if kind == "not":
        return f"not ({describe(cond.get('condition'))})"
    op = str(cond.get("op", ""))
    if kind == "score":
        return f"{cond.get('score', 'total')} score {_OP_WORDS.get(op, '?')} {_value(cond.get('value'))}"
    if kind == "attribute":
        name, value = cond.get("name") or "?", cond.get("value")
        attribute_words = {"eq": "is", "ne": "is not", "in": "is one of", "not_in": "is none of",
                           "contains": "contains", "exists": "is set", "missing": "is not set"}
        if op in ("exists", "missing"):
            return f"{name} {attribute_words[op]}"
        return f"{name} {attribute_words.get(op) or _OP_WORDS.get(op, '?')} {_value(value)}"
    if kind == "stage":
        stages: list[Any] = cond["stages"] if isinstance(cond.get("stages"), list) else []
        names = _value(stages) if stages else "?"
        stage_words = {"in": "is one of" if len(stages) > 1 else "is", "not_in": "is not",
                       "at_least": "is at least", "before": "is before"}
        return f"stage {stage_words.get(op or 'in', '?')} {names}"
    if kind == "engagement":
        event = str(cond.get("event") or "?")
        count = cond.get("min_count", 1)
        times = "once" if count in (1, "1") else "twice" if count in (2, "2") else f"{count} times"
        window = f" in the last {_span(cond['within'])}" if cond.get("within") else ""
        return f"{_EVENT_PHRASES.get(event, 'had ' + event)} at least {times}{window}"
    return "?"


def _span(within: Any) -> str:
    try:
        seconds = parse_duration(within)
    except ValueError:
        return str(within)
    parts = []
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    count_text, unit = parts[0].split() if len(parts) == 1 else ("0", "")
    if unit.startswith("week") and int(count_text) <= 4:
        return f"{int(count_text) * 7} days"  # "the last 14 days" reads as marketers say it
    return " ".join(parts)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) or "?"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return "?" if value is None or value == "" else str(value)
