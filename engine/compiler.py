"""Compiles a validated care-model document into the frozen plan the workflow interprets.

The plan is plain data (numbers, strings, dicts) so it travels through Temporal unchanged and the
interpreter never parses durations, clocks or time zones names of its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from engine.document import WEEKDAYS, CareModelDocument, edges
from engine.durations import format_duration, parse_clock, parse_duration
from engine.validator import DocumentError, graph_problems, load_or_raise


@dataclass(frozen=True)
class Plan:
    care_model: str
    name: str
    version: int
    hash: str
    start: str
    steps: dict[str, dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)


def document_hash(doc: CareModelDocument) -> str:
    canonical = json.dumps(doc.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def compile_document(doc: CareModelDocument, version: int = 0, known_models: set[str] | None = None) -> Plan:
    problems = graph_problems(doc, known_models)
    if problems:
        raise DocumentError(problems)
    s = doc.settings
    settings = {
        "entry": None if s.entry is None else {
            "event": s.entry.event, "where": dict(s.entry.where),
            "when": compile_condition(s.entry.when) if s.entry.when else None,
        },
        "reenrol": s.reenrol,
        "goals": [{"name": g.name, "when": compile_condition(g.when)} for g in s.goals],
        "exit_when": [{"name": g.name, "when": compile_condition(g.when)} for g in s.exit_when],
        "send_window": None if s.send_window is None else {
            "start_minute": _minute(s.send_window.start), "end_minute": _minute(s.send_window.end),
            "days": [WEEKDAYS.index(d) for d in s.send_window.days],
        },
        "frequency_cap": None if s.frequency_cap is None else {
            "max": s.frequency_cap.max, "per_seconds": parse_duration(s.frequency_cap.per),
            "channels": list(s.frequency_cap.channels),
        },
        "default_timezone": s.default_timezone,
    }
    return Plan(
        care_model=doc.id, name=doc.name, version=version, hash=document_hash(doc), start=doc.start,
        steps={step.id: _step(step) for step in doc.steps}, settings=settings,
    )


def compile_text(text: str, version: int = 0) -> Plan:
    return compile_document(load_or_raise(text), version)


def _step(step: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": step.kind, "name": step.name or step.id}
    match step.kind:
        case "email":
            out |= {"subject": step.subject, "body": step.body, "connector": step.connector}
        case "social":
            out |= {"action": step.action, "message": step.message, "connector": step.connector}
        case "crm":
            out |= {"action": step.action, "field": step.field, "value": step.value, "stage": step.stage,
                    "text": step.text, "connector": step.connector}
        case "webhook":
            out |= {"url": step.url, "payload": dict(step.payload), "connector": step.connector}
        case "score":
            out |= {"score": step.score, "delta": step.delta, "reason": step.reason}
        case "wait":
            if step.duration is not None:
                out |= {"mode": "duration", "seconds": parse_duration(step.duration)}
            elif step.until is not None:
                out |= {"mode": "until", "at": step.until.timestamp()}
            else:
                out |= {"mode": "time_of_day", "minute": _minute(step.time_of_day),
                        "days": [WEEKDAYS.index(d) for d in step.days]}
        case "wait_event":
            out |= {"event": step.event, "where": dict(step.where), "timeout_seconds": parse_duration(step.timeout)}
        case "branch":
            out["cases"] = [{"label": c.label or f"case {i + 1}", "when": compile_condition(c.when), "next": c.next}
                            for i, c in enumerate(step.cases)]
        case "split":
            out |= {"variants": [{"name": v.name, "weight": v.weight, "next": v.next} for v in step.variants],
                    "holdout": step.holdout}
        case "handover":
            out |= {"team": step.team, "routing": step.routing, "sla_seconds": parse_duration(step.sla),
                    "note": step.note}
        case "move":
            out["care_model"] = step.care_model
        case "exit":
            out["reason"] = step.reason
    out["edges"] = {name: target for name, target in edges(step)}
    return out


def compile_condition(cond: Any) -> dict[str, Any]:
    data = cond.model_dump(mode="json")
    return _normalise(data)


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    if data["type"] in ("all", "any"):
        data["conditions"] = [_normalise(c) for c in data["conditions"]]
    elif data["type"] == "not":
        data["condition"] = _normalise(data["condition"])
    elif data["type"] == "engagement" and data.get("within") is not None:
        seconds = parse_duration(data["within"])
        data["within"], data["within_text"] = seconds, format_duration(seconds)
    return data


def _minute(clock: str) -> int:
    t = parse_clock(clock)
    return t.hour * 60 + t.minute
