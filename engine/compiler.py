"""Compiles a validated care-model document into the frozen plan the workflow interprets.

Each step kind compiles itself (`engine.steps`); this module adds the model's settings and the hash.
"""

from __future__ import annotations

import hashlib
import json

from engine.document import CareModelDocument
from engine.durations import parse_clock, parse_duration
from engine.fields import WEEKDAYS, compile_condition
from engine.plan import CapPlan, EntryPlan, Plan, PlanSettings, RulePlan, WindowPlan
from engine.validator import DocumentError, graph_problems, load_or_raise


def document_hash(doc: CareModelDocument) -> str:
    canonical = json.dumps(doc.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def compile_document(doc: CareModelDocument, version: int = 0, known_models: set[str] | None = None) -> Plan:
    problems = graph_problems(doc, known_models)
    if problems:
        raise DocumentError(problems)
    s = doc.settings
    settings = PlanSettings(
        entry=None if s.entry is None else EntryPlan(
            event=s.entry.event, where=dict(s.entry.where),
            when=compile_condition(s.entry.when) if s.entry.when else None,
        ),
        reenrol=s.reenrol,
        goals=[RulePlan(name=g.name, when=compile_condition(g.when)) for g in s.goals],
        exit_when=[RulePlan(name=g.name, when=compile_condition(g.when)) for g in s.exit_when],
        send_window=None if s.send_window is None else WindowPlan(
            start_minute=_minute(s.send_window.start), end_minute=_minute(s.send_window.end),
            days=[WEEKDAYS.index(d) for d in s.send_window.days],
        ),
        frequency_cap=None if s.frequency_cap is None else CapPlan(
            max=s.frequency_cap.max, per_seconds=parse_duration(s.frequency_cap.per),
            channels=list(s.frequency_cap.channels), on_cap=s.frequency_cap.on_cap,
        ),
        default_timezone=s.default_timezone,
    )
    return Plan(
        care_model=doc.id, name=doc.name, version=version, hash=document_hash(doc), start=doc.start,
        steps={step.id: step.compile() for step in doc.steps}, settings=settings,
    )


def compile_text(text: str, version: int = 0) -> Plan:
    return compile_document(load_or_raise(text), version)


def _minute(clock: str) -> int:
    t = parse_clock(clock)
    return t.hour * 60 + t.minute
