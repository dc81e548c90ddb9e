"""Warnings about a care model that is valid but may not do what its author means: event names no one sends,
sales outcomes with no next step, a holdout that ends the run, a goal that ends runs before a later step can use
its event, a sales team with no reps, a connector that is not installed. They never block publishing; each says
what to do.

Also the catalogue of event types Nurture knows without being told."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from engine.document import CareModelDocument
from engine.fields import AllCondition, AnyCondition, EngagementCondition, NotCondition
from engine.steps import HandoverStep, SplitStep, WaitEventStep
from engine.validator import Problem

# Events Nurture itself raises or understands, and the common ones integrators send; integrators add theirs
# (NURTURE_EVENT_TYPES), and every type seen on a lead's timeline counts as known too.
BUILTIN_EVENTS = frozenset({
    "email.opened", "email.clicked", "email.bounced", "lead.unsubscribed", "lead.resubscribed", "lead.updated",
    "lead.stage_changed", "handover.accepted", "handover.rejected", "form.submitted", "page.visited",
    "webinar.registered", "webinar.attended", "meeting.booked", "trial.started",
})


def advice(doc: CareModelDocument, known_events: set[str] | frozenset[str] = BUILTIN_EVENTS,
           teams: set[str] | None = None, connectors: set[str] | None = None) -> list[Problem]:
    """`teams` and `connectors`, when given, are the ones this installation has: others are warned about."""
    return [*_unknown_events(doc, set(known_events) | BUILTIN_EVENTS), *_open_ends(doc), *_pre_empted(doc),
            *_unknown_teams(doc, teams), *_unknown_connectors(doc, connectors)]


def _pre_empted(doc: CareModelDocument) -> list[Problem]:
    """A goal or exit rule met by an event ends the run as the event arrives, before a wait for it can move on."""
    out = []
    for group, what in (("goals", "goal"), ("exit_when", "exit rule")):
        for rule in getattr(doc.settings, group):
            ending = set(_met_by(rule.when))
            for step in doc.steps:
                if isinstance(step, WaitEventStep) and step.event in ending:
                    out.append(Problem(
                        f"the {what} '{rule.name}' is met by '{step.event}' and ends the run when it arrives, so this "
                        f"step never sees it: its leads go on only by timeout, and what follows 'event' is never "
                        f"reached that way. Wait for another event, or make the {what} need more than this one",
                        step=step.id, field="event"))
    return out


def _met_by(cond: Any) -> Iterator[str]:
    """Events that can by themselves make a condition true (not those under a `not`, nor one of several in an
    `all`, which needs the others too)."""
    if isinstance(cond, EngagementCondition) and cond.min_count == 1:
        yield cond.event
    elif isinstance(cond, AnyCondition):
        for inner in cond.conditions:
            yield from _met_by(inner)
    elif isinstance(cond, AllCondition) and len(cond.conditions) == 1:
        yield from _met_by(cond.conditions[0])


def _unknown_teams(doc: CareModelDocument, teams: set[str] | None) -> list[Problem]:
    if teams is None:
        return []
    known = f" (teams with reps: {', '.join(sorted(teams))})" if teams else ""
    return [Problem(f"no active rep is in team '{step.team}'{known}: its handovers wait unassigned until a rep joins "
                    "it. Check the spelling, or add a rep", step=step.id, field="team")
            for step in doc.steps if isinstance(step, HandoverStep) and step.team not in teams]


def _unknown_connectors(doc: CareModelDocument, connectors: set[str] | None) -> list[Problem]:
    if connectors is None:
        return []
    return [Problem(f"no connector '{name}' is installed (installed: {', '.join(sorted(connectors)) or 'none'}): its "
                    "sends would fail. Choose an installed one, or have an admin install it", step=step.id,
                    field="connector")
            for step in doc.steps
            if isinstance(name := getattr(step, "connector", None), str) and name not in connectors]


def _unknown_events(doc: CareModelDocument, known: set[str]) -> list[Problem]:
    out = []
    for name, step, field in event_names(doc):
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
            hint = f"did you mean '{close[0]}'? " if close else ""
            out.append(Problem(f"no event '{name}' has been seen or declared: {hint}a misspelt name never matches "
                               f"(declare new ones in NURTURE_EVENT_TYPES)", step=step, field=field))
    return out


def event_names(doc: CareModelDocument) -> Iterator[tuple[str, str | None, str]]:
    s = doc.settings
    if s.entry and s.entry.event:
        yield s.entry.event, None, "settings.entry.event"
    if s.entry and s.entry.when:
        yield from _in_condition(s.entry.when, None, "settings.entry.when")
    for group in ("goals", "exit_when"):
        for i, rule in enumerate(getattr(s, group)):
            yield from _in_condition(rule.when, None, f"settings.{group}.{i}.when")
    for step in doc.steps:
        if isinstance(step, WaitEventStep):
            yield step.event, step.id, "event"
        for i, case in enumerate(getattr(step, "cases", [])):
            yield from _in_condition(case.when, step.id, f"cases.{i}.when")


def _in_condition(cond: Any, step: str | None, field: str) -> Iterator[tuple[str, str | None, str]]:
    if isinstance(cond, EngagementCondition):
        yield cond.event, step, f"{field}.event"
    elif isinstance(cond, AllCondition | AnyCondition):
        for i, inner in enumerate(cond.conditions):
            yield from _in_condition(inner, step, f"{field}.conditions.{i}")
    elif isinstance(cond, NotCondition):
        yield from _in_condition(cond.condition, step, f"{field}.condition")


def _open_ends(doc: CareModelDocument) -> list[Problem]:
    out = []
    for step in doc.steps:
        if isinstance(step, HandoverStep):
            for outcome in ("accepted", "rejected", "expired"):
                if getattr(step, f"on_{outcome}") is None:
                    out.append(Problem(f"a lead whose handover is {outcome} ends its run here: choose a next step "
                                       f"(back to nurture, say), or an exit step to end it on purpose",
                                       step=step.id, field=f"on_{outcome}"))
        if isinstance(step, SplitStep) and step.holdout and step.holdout_next is None:
            out.append(Problem(f"the {step.holdout:.0%} holdout ends its run here, so it gets nothing later either: "
                               "choose a next step for it, or an exit step to end it on purpose",
                               step=step.id, field="holdout_next"))
    return out
