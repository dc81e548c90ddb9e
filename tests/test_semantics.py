"""Care models a marketer can trust: what validates runs as written, a wait sees the event that came early, the
frequency cap can defer instead of drop, and the simulator follows a move, routes to reps and speaks the lead's
time. Each case has a care model of its own, run on the real Temporal test server."""

from __future__ import annotations

import textwrap
import uuid
from typing import Any

import yaml

from engine.advice import advice
from engine.lead import LeadState
from engine.validator import check, load, load_or_raise
from store.tables import Rep
from tests.conftest import Harness
from workflows.simulate import ScriptedEvent, simulate


def doc(text: str) -> Any:
    return load_or_raise(textwrap.dedent(text))


def problems(text: str) -> list[str]:
    return [str(p) for p in load(textwrap.dedent(text))[1]]


# 1. A move step simulates, and the lead is followed into the target when its document is given.

MOVER = """
id: mover
name: Mover
start: hello
steps:
  - {id: hello, kind: email, subject: Hello, body: b, next: onward}
  - {id: onward, kind: move, care_model: next-track}
"""
NEXT_TRACK = """
id: next-track
name: Next track
start: welcome
steps:
  - {id: welcome, kind: email, subject: "Welcome to the next track", body: b}
"""


async def test_a_move_simulates_and_follows_the_lead_into_the_target_when_given() -> None:
    lead = LeadState(id="mo", email="mo@example.com")
    alone = await simulate(doc(MOVER), lead, [])
    assert alone.outcome == "moved:next-track"
    assert ("onward", "moved to next-track") in [(s.step, s.outcome) for s in alone.steps]
    assert "give its document too" in next(s.why for s in alone.steps if s.step == "onward")

    followed = await simulate(doc(MOVER), lead, [], others=[doc(NEXT_TRACK)])
    assert [(s.care_model, s.step) for s in followed.steps if s.kind == "email"] == [
        ("mover", "hello"), ("next-track", "welcome")]
    assert [d["subject"] for d in followed.deliveries] == ["Hello", "Welcome to the next track"]


# 3. What would fail at send time fails validation.

def test_a_template_that_cannot_send_does_not_validate() -> None:
    found = problems("""
        id: content
        name: Content
        start: one
        steps:
          - {id: one, kind: email, subject: "Hi {{ lead.company | no_such_filter }}", body: b, next: two}
          - {id: two, kind: email, subject: Later, body: "{% if lead.vip %}{{ lead.name | shout }}{% endif %}"}
        """)
    assert found == [
        "line 6, step 'one', field 'subject': template error: no filter 'no_such_filter' (filters include "
        "default, upper, lower, title, trim, truncate)",
        "line 7, step 'two', field 'body': template error: no filter 'shout' (filters include default, upper, "
        "lower, title, trim, truncate)"]


# 4. A handover states its SLA, and every sales outcome has somewhere to go (or is warned about).

def test_a_handover_needs_an_sla_and_is_warned_about_outcomes_with_no_next_step() -> None:
    base = """
        id: route
        name: Route
        start: to-sales
        steps:
          - {id: to-sales, kind: handover, team: sales%s, on_accepted: done}
          - {id: done, kind: exit}
        """
    assert problems(base % "") == ["line 6, step 'to-sales': a handover needs an 'sla': how long sales has to "
                                   "accept or reject before it expires, e.g. '2d'"]
    warnings = [(w.step, w.field) for w in advice(doc(base % ", sla: 2d"))]
    assert warnings == [("to-sales", "on_rejected"), ("to-sales", "on_expired")]


# 5. A wait for an event sees the event that came while the lead was held before it.

WEBINAR = """
id: webinar-{tag}
name: Webinar
start: invite
steps:
  - {id: invite, kind: email, subject: "Join our webinar", body: b, next: hold}
  - {id: hold, kind: wait, duration: 1d, next: registered}
  - {id: registered, kind: wait_event, event: webinar.registered, timeout: 7d%s,
     on_event: thanks, on_timeout: last-seats}
  - {id: thanks, kind: email, subject: "See you there", body: b}
  - {id: last-seats, kind: email, subject: "Last seats", body: b}
"""


async def test_a_wait_for_an_event_sees_one_that_came_early_unless_told_not_to(nurture: Harness) -> None:
    for look_back, expected in (("", "See you there"), (", look_back: none", "Last seats")):
        version = nurture.publish(WEBINAR.replace("{tag}", uuid.uuid4().hex[:6]) % look_back)
        lead = nurture.lead()
        _, run = await nurture.enrol(version, lead)
        await nurture.days(0.5)
        await nurture.event(lead, "webinar.registered")  # during the 1-day hold, before the wait listens
        await nurture.finish(run)
        assert [m.subject for m in nurture.channel.to(lead.id)] == ["Join our webinar", expected]
    [early] = [j for j in nurture.store.journey() if j.step == "registered" and j.outcome.startswith("got")]
    assert "before the wait began" in early.why


# 6. Event names are checked against a catalogue, with a suggestion.

def test_unknown_event_names_are_warned_about_with_a_suggestion() -> None:
    care_model = doc("""
        id: typos
        name: Typos
        start: listen
        settings:
          entry: {event: form.submited}
          goals: [{name: engaged, when: {type: engagement, event: email.clikced}}]
        steps:
          - {id: listen, kind: wait_event, event: webinar.registred, timeout: 7d}
        """)
    found = {(w.field, w.message.split(":")[0], w.message.split(":")[1].strip()) for w in advice(care_model)}
    assert ("settings.entry.event", "no event 'form.submited' has been seen or declared",
            "did you mean 'form.submitted'? a misspelt name never matches (declare new ones in NURTURE_EVENT_TYPES)"
            ) in found
    assert {f for f, _, _ in found} == {"settings.entry.event", "settings.goals.0.when.event", "event"}
    declared = advice(care_model, {"webinar.registred", "email.clikced", "form.submited"})
    assert declared == [], "declared (or seen) names are not warned about"


# 7. The frequency cap can defer a message instead of dropping it.

CAPPED = """
id: capped-{tag}
name: Capped
start: one
settings:
  frequency_cap: {max: 1, per: 1d, on_cap: %s}
steps:
  - {id: one, kind: email, subject: One, body: b, next: two}
  - {id: two, kind: email, subject: Two, body: b}
"""


async def test_the_frequency_cap_defers_when_asked_and_the_journey_says_so(nurture: Harness) -> None:
    outcomes = {}
    for on_cap in ("skip", "defer"):
        version = nurture.publish(CAPPED.replace("{tag}", uuid.uuid4().hex[:6]) % on_cap)
        lead = nurture.lead()
        _, run = await nurture.enrol(version, lead)
        await nurture.finish(run)
        outcomes[on_cap] = ([m.subject for m in nurture.channel.to(lead.id)],
                            [o for s, o in nurture.steps(lead) if s == "two"])
    assert outcomes["skip"] == (["One"], ["skipped"])
    subjects, two = outcomes["defer"]
    assert subjects == ["One", "Two"]
    assert two[0].startswith("deferred until ") and two[1] == "sent"


# 8. Messages a marketer can read.

def test_problems_come_in_file_order_with_one_wording_per_rule_and_the_duplicate_where_it_is() -> None:
    found = problems("""
        id: words
        name: Words
        start: a
        steps:
          - {id: a, kind: wait, duration: -5, next: b}
          - {id: b, kind: wait_event, event: email.clicked, timeout: soon, on_event: a}
        """)
    assert found == ["line 6, step 'a', field 'duration': duration -5 must be longer than zero",
                     "line 7, step 'b', field 'timeout': cannot read duration 'soon': use forms like '3d', '12h', "
                     "'90m', '1w2d' or 'P3DT4H'"]
    dupes = textwrap.dedent("""
        id: dupes
        name: Dupes
        start: a
        steps:
          - {id: a, kind: wait, duration: 1d, next: b}
          - {id: b, kind: exit}
          - {id: b, kind: exit, reason: again}
        """)
    _, graph = check(yaml.safe_load(dupes), yaml.compose(dupes))
    assert [str(p) for p in graph] == ["line 8, step 'b', field 'id': duplicate step id 'b'"]
    holdout = advice(doc("""
        id: held
        name: Held
        start: ab
        steps:
          - {id: ab, kind: split, variants: [{name: A, weight: 1, next: end}], holdout: 0.1}
          - {id: end, kind: exit}
        """))
    assert [(w.field, w.message.split(",")[0]) for w in holdout] == [
        ("holdout_next", "the 10% holdout ends its run here")]


ROUTED = """
id: routed
name: Routed
start: to-sales
settings: {default_timezone: America/New_York}
steps:
  - {id: to-sales, kind: handover, team: sales, sla: 36h, on_accepted: done, on_rejected: done, on_expired: done}
  - {id: done, kind: exit}
"""


async def test_the_simulator_speaks_the_leads_time_keeps_durations_routes_to_reps_and_names_unheard_events() -> None:
    result = await simulate(doc(ROUTED), LeadState(id="ny", email="ny@example.com"),
                            [ScriptedEvent(3600, "webinar.attended", {}, "w-1")],
                            reps=[Rep(id="ana", name="Ana", email="ana@acme.test", team="sales")])
    handed = next(s for s in result.steps if s.outcome.startswith("handed to"))
    assert handed.outcome == "handed to sales → ana (round robin)" and handed.why == "SLA 36h"
    assert handed.local.endswith("America/New_York") and handed.local != handed.at
    assert [d["to"] for d in result.deliveries if d["channel"] == "email"] == ["ana@acme.test"]
    assert result.unmatched == ["webinar.attended (+1h)"]
