"""Marketers' mistakes come back as located problems, every one of them, never as a traceback."""

from __future__ import annotations

import textwrap

from engine.validator import Problem, load


def problems(text: str) -> list[Problem]:
    return load(textwrap.dedent(text))[1]


def test_every_schema_problem_is_located_by_step_field_and_line() -> None:
    found = problems("""\
        id: welcome
        name: Welcome
        start: hello
        steps:
          - id: hello
            kind: email
            subject: Hi
            next: pause
          - id: pause
            kind: wait
            duration: 3 fortnights
          - id: pick
            kind: branch
            cases:
              - when: {type: score, op: gte, value: lots}
          - id: oops
            kind: emial
        """)
    by_step = {(p.step, p.field): p for p in found}
    assert by_step[("hello", "body")].message == "Field required"
    assert by_step[("hello", "body")].line == 5
    assert "cannot read duration '3 fortnights'" in by_step[("pause", "duration")].message
    assert by_step[("pause", "duration")].line == 11
    assert by_step[("pick", "cases.0.when.value")].line == 15
    assert "'emial'" in by_step[("oops", "kind")].message and "'email'" in by_step[("oops", "kind")].message
    assert len(found) == 4


def test_graph_problems_name_the_step_and_edge() -> None:
    found = problems("""\
        id: loops
        name: Loops
        start: a
        steps:
          - {id: a, kind: email, subject: s, body: b, next: b}
          - {id: b, kind: score, delta: 1, next: a}
          - {id: c, kind: exit}
          - {id: d, kind: wait_event, event: email.clicked, timeout: 2d, on_event: nowhere}
        """)
    messages = {(p.step, p.field): p.message for p in found}
    assert messages[("d", "on_event")] == "points to unknown step 'nowhere'"
    assert len(found) == 1, "reachability and loops are judged once edges resolve"


def test_loop_without_a_wait_is_rejected_and_unreachable_steps_reported() -> None:
    found = problems("""\
        id: loops
        name: Loops
        start: a
        steps:
          - {id: a, kind: email, subject: s, body: b, next: b}
          - {id: b, kind: score, delta: 1, next: a}
          - {id: c, kind: exit}
        """)
    text = [str(p) for p in found]
    assert any("loop a -> b -> a has no wait step" in t for t in text), text
    assert any(p.step == "c" and "no path from the start" in p.message for p in found)


def test_a_loop_through_a_wait_is_fine() -> None:
    assert problems("""\
        id: newsletter
        name: Monthly newsletter
        start: send
        steps:
          - {id: send, kind: email, subject: News, body: Hello, next: pause}
          - {id: pause, kind: wait, duration: 30d, next: send}
        """) == []


def test_rules_inside_steps_are_explained() -> None:
    found = problems("""\
        id: rules
        name: Rules
        start: w
        settings:
          default_timezone: Mars/Olympus
          send_window: {start: "18:00", end: "08:00"}
        steps:
          - {id: w, kind: wait, duration: 1d, time_of_day: "09:00", next: m}
          - {id: m, kind: email, subject: "Hi {{ lead.name", body: b, next: s}
          - {id: s, kind: crm, action: set_stage}
        """)
    text = [str(p) for p in found]
    assert any("field 'settings.send_window'" in t and "'start' must be earlier than 'end'" in t for t in text)
    assert any("step 'w'" in t and "exactly one of 'duration', 'until' or 'time_of_day'" in t for t in text)
    assert any("step 's'" in t and "needs 'stage'" in t for t in text), text


def test_template_and_time_zone_errors_are_reported_after_the_schema_passes() -> None:
    found = problems("""\
        id: rules
        name: Rules
        start: m
        settings: {default_timezone: Mars/Olympus}
        steps:
          - {id: m, kind: email, subject: "Hi {{ lead.name", body: b}
        """)
    text = [str(p) for p in found]
    assert any("step 'm', field 'subject': template error" in t for t in text), text
    assert any("unknown time zone 'Mars/Olympus'" in t for t in text), text


def test_syntax_errors_give_the_line() -> None:
    found = problems("id: x\nname: [unclosed\nstart: a\n")
    assert len(found) == 1 and found[0].line is not None and "not valid YAML" in found[0].message


def test_json_documents_are_read_and_located_too() -> None:
    found = problems('{\n  "id": "j",\n  "name": "J",\n  "start": "a",\n  "steps": [\n'
                     '    {"id": "a", "kind": "wait", "duration": "soon"}\n  ]\n}\n')
    assert [(p.step, p.field, p.line) for p in found] == [("a", "duration", 6)]


def test_not_a_mapping() -> None:
    assert "must be a mapping" in problems("- just\n- a list\n")[0].message
