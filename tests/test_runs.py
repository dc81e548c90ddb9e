"""Care models running on the real Temporal test server, with a real SQLite store behind the activities."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from engine.plan import plan_from_dict
from engine.schedule import choose_variant
from engine.steps import SplitPlan
from store.tables import Handover
from tests.conftest import Harness, harness_with
from workflows.care_model_run import CareModelRun
from workflows.messages import RunInput

NURTURE = """
id: nurture-{tag}
name: Nurture
start: hello
settings:
  goals:
    - name: reached MQL
      when: {{type: stage, op: at_least, stages: [mql]}}
steps:
  - {{id: hello, kind: email, subject: "Hello {{{{ lead.first_name }}}}", body: "Hi there", next: pause}}
  - {{id: pause, kind: wait, duration: 3d, next: engaged}}
  - id: engaged
    kind: branch
    cases:
      - label: clicked twice
        when: {{type: engagement, event: email.clicked, min_count: 2, within: 7d}}
        next: case-study
    default: nudge
  - {{id: case-study, kind: email, subject: Case study, body: "For you", next: done}}
  - {{id: nudge, kind: email, subject: "Still there?", body: "Reply", next: done}}
  - {{id: done, kind: exit, reason: finished}}
"""


async def test_a_lead_walks_the_plan_and_the_query_says_where_and_why(nurture: Harness) -> None:
    version = nurture.publish(NURTURE.format(tag="walk"))
    lead = nurture.lead(attributes={"first_name": "Ada"})
    enrolled, handle = await nurture.enrol(version, lead)
    assert enrolled.status == "started" and enrolled.workflow_id == f"nurture/nurture-walk/{lead.id}"

    await nurture.days(1)
    where = await handle.query(CareModelRun.where)
    assert (where.step, where.state, where.version) == ("pause", "waiting", 1)
    assert where.until is not None and where.why == "wait step pause"
    await nurture.event(lead, "email.clicked")
    await nurture.event(lead, "email.clicked")

    result = await nurture.finish(handle)
    assert result.outcome == "exit:finished"
    assert [m.subject for m in nurture.channel.to(lead.id)] == ["Hello Ada", "Case study"]
    steps = nurture.store.journey(lead_id=lead.id)
    branch = next(s for s in steps if s.step == "engaged")
    assert branch.outcome == "took 'clicked twice'"
    assert branch.why == "clicked an email at least twice in the last 7 days: yes (2 so far)"
    assert steps[-1].at - steps[0].at >= 3 * 86400, "the branch ran after the three-day wait"


async def test_a_repeated_event_id_counts_once(nurture: Harness) -> None:
    version = nurture.publish(NURTURE.format(tag="dedupe"))
    lead = nurture.lead(attributes={"first_name": "Bo"})
    _, handle = await nurture.enrol(version, lead)
    await nurture.days(1)
    first = await nurture.event(lead, "email.clicked", event_id="click-1")
    again = await nurture.event(lead, "email.clicked", event_id="click-1")
    assert first.new and first.signalled == [handle.id]
    assert not again.new and again.signalled == []
    await nurture.finish(handle)
    assert [m.subject for m in nurture.channel.to(lead.id)] == ["Hello Bo", "Still there?"]
    assert len(nurture.store.timeline(lead.id)) == 1


async def test_a_goal_met_while_waiting_ends_the_run_before_the_next_email(nurture: Harness) -> None:
    version = nurture.publish(NURTURE.format(tag="goal"))
    lead = nurture.lead(attributes={"first_name": "Cy"})
    _, handle = await nurture.enrol(version, lead)
    await nurture.days(1)
    await nurture.event(lead, "lead.updated", {"stage": "mql"})
    result = await nurture.finish(handle)
    assert result.outcome == "goal:reached MQL"
    assert len(nurture.channel.to(lead.id)) == 1
    assert nurture.store.enrolments(lead_id=lead.id)[0].outcome == "goal:reached MQL"
    assert nurture.store.get_lead(lead.id).stage == "mql", "the lead's profile follows the update"


WAIT_FOR_CLICK = """
id: wait-click-{tag}
name: Wait for a click
start: ask
steps:
  - {id: ask, kind: email, subject: "Want the guide?", body: Click, next: listen}
  - {id: listen, kind: wait_event, event: page.visited, where: {page: /pricing}, timeout: 5d,
     on_event: hot, on_timeout: cold}
  - {id: hot, kind: score, delta: 25, reason: visited pricing, next: end}
  - {id: cold, kind: exit, reason: no interest}
  - {id: end, kind: exit, reason: interested}
"""


async def test_wait_for_event_takes_the_event_edge_only_for_a_matching_event(nurture: Harness) -> None:
    version = nurture.publish(WAIT_FOR_CLICK.replace("{tag}", "hit"))
    lead = nurture.lead()
    _, handle = await nurture.enrol(version, lead)
    await nurture.days(1)
    await nurture.event(lead, "page.visited", {"page": "/blog"})
    await nurture.days(1)
    assert (await handle.query(CareModelRun.where)).state == "waiting_for_event"
    await nurture.event(lead, "page.visited", {"page": "/pricing"})
    assert (await nurture.finish(handle)).outcome == "exit:interested"
    assert nurture.store.get_lead(lead.id).engagement == 25
    assert ("listen", "got page.visited") in nurture.steps(lead)


async def test_wait_for_event_times_out(nurture: Harness) -> None:
    version = nurture.publish(WAIT_FOR_CLICK.replace("{tag}", "miss"))
    lead = nurture.lead()
    _, handle = await nurture.enrol(version, lead)
    assert (await nurture.finish(handle)).outcome == "exit:no interest"
    listen = [j for j in nurture.store.journey(lead_id=lead.id) if j.step == "listen"]
    assert listen[-1].outcome == "timed out" and abs(listen[-1].at - listen[0].at - 5 * 86400) < 1


DRIP = """
id: drip-{tag}
name: Drip
start: one
settings:
  frequency_cap: {max: 2, per: 7d}
steps:
  - {id: one, kind: email, subject: One, body: b, next: two}
  - {id: two, kind: email, subject: Two, body: b, next: pause}
  - {id: pause, kind: wait, duration: 1d, next: three}
  - {id: three, kind: email, subject: Three, body: b, next: note}
  - {id: note, kind: crm, action: add_note, text: drip done}
"""


async def test_frequency_cap_is_checked_when_sending(nurture: Harness) -> None:
    version = nurture.publish(DRIP.replace("{tag}", "cap"))
    lead = nurture.lead()
    _, handle = await nurture.enrol(version, lead)
    await nurture.finish(handle)
    assert [m.subject for m in nurture.channel.to(lead.id)] == ["One", "Two"]
    third = next(o for o in nurture.store.outbox(lead.id) if o.step == "three")
    assert third.status == "skipped" and third.reason == "frequency cap: 2 of 2 per 1w used"
    assert len(nurture.channel.to(lead.id, "crm")) == 1, "the cap counts emails, not CRM notes"


async def test_unsubscribing_after_enrolment_stops_later_emails(nurture: Harness) -> None:
    version = nurture.publish(DRIP.replace("{tag}", "unsub"))
    lead = nurture.lead()
    _, handle = await nurture.enrol(version, lead)
    await nurture.env.sleep(3600)
    await nurture.event(lead, "lead.unsubscribed")
    await nurture.finish(handle)
    assert [m.subject for m in nurture.channel.to(lead.id)] == ["One", "Two"]
    third = next(o for o in nurture.store.outbox(lead.id) if o.step == "three")
    assert (third.status, third.reason) == ("skipped", "lead has unsubscribed")


async def test_an_unsubscribed_lead_gets_no_email_at_all(nurture: Harness) -> None:
    version = nurture.publish(DRIP.replace("{tag}", "never"))
    lead = nurture.lead(unsubscribed=True)
    _, handle = await nurture.enrol(version, lead)
    await nurture.finish(handle)
    assert nurture.channel.to(lead.id) == []
    assert {o.status for o in nurture.store.outbox(lead.id) if o.channel == "email"} == {"skipped"}


class _LoseFirstCompletion(Interceptor):
    """The worker 'dies' right after the first delivery went out, before Temporal heard of it."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        class Inbound(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                result = await super().execute_activity(input)
                if activity.info().activity_type == "deliver" and activity.info().attempt == 1:
                    raise RuntimeError("worker lost before reporting the delivery")
                return result

        return Inbound(next)


async def test_a_retried_delivery_never_sends_twice(env: Any, store: Any) -> None:
    async for nurture in harness_with(env, store, [_LoseFirstCompletion()]):
        version = nurture.publish(DRIP.replace("{tag}", "retry"))
        lead = nurture.lead()
        _, handle = await nurture.enrol(version, lead)
        await nurture.finish(handle)
        assert [m.subject for m in nurture.channel.to(lead.id)] == ["One", "Two"]
        retried = [e for e in await _history(handle) if e.HasField("activity_task_started_event_attributes")
                   and e.activity_task_started_event_attributes.attempt == 2]
        assert len(retried) >= 2, "each delivery was lost once and retried"
        assert len({m.key for m in nurture.channel.sent}) == len(nurture.channel.sent)


async def _history(handle: Any) -> list[Any]:
    return [event async for event in handle.fetch_history_events()]


HANDOVER = """
id: handover-{tag}
name: Handover
start: to-sales
steps:
  - {id: to-sales, kind: handover, team: emea, sla: 2d, on_accepted: won, on_rejected: back, on_expired: chase}
  - {id: won, kind: crm, action: set_stage, stage: sal, next: end}
  - {id: back, kind: wait, duration: 30d, next: end}
  - {id: chase, kind: crm, action: create_task, text: SLA missed, next: end}
  - {id: end, kind: exit, reason: done}
"""


async def test_handover_accepted_rejected_and_expired_follow_their_edges(nurture: Harness) -> None:
    version = nurture.publish(HANDOVER.replace("{tag}", "all"))
    accepted, rejected, ignored = nurture.lead(), nurture.lead(), nurture.lead()
    handles = [(await nurture.enrol(version, lead))[1] for lead in (accepted, rejected, ignored)]
    await nurture.days(1)
    where = await handles[0].query(CareModelRun.where)
    assert (where.state, where.step) == ("awaiting_sales", "to-sales")
    assert len(nurture.store.handovers("open")) == 3
    await nurture.event(accepted, "handover.accepted", {"reason": "call booked"})
    await nurture.event(rejected, "handover.rejected", {"reason": "no budget"})
    for handle in handles:
        await nurture.finish(handle)
    assert ("won", "sent") in nurture.steps(accepted)
    assert ("back", f"until {_day(nurture, rejected, 'back', 30)}") in nurture.steps(rejected)
    assert ("chase", "sent") in nurture.steps(ignored)
    closed = {h.lead_id: (h.status, h.reason) for h in nurture.store.handovers()}
    assert closed[accepted.id] == ("accepted", "call booked")
    assert closed[rejected.id] == ("rejected", "no budget")
    assert closed[ignored.id] == ("expired", "SLA passed without a decision")
    assert all(isinstance(h, Handover) and h.closed_at for h in nurture.store.handovers())


def _day(nurture: Harness, lead: Any, step: str, days: int) -> str:
    at = next(j.at for j in nurture.store.journey(lead_id=lead.id) if j.step == step)
    return (datetime.fromtimestamp(at, UTC) + timedelta(days=days)).strftime("%Y-%m-%d %H:%M UTC")


SPLIT = """
id: split-test
name: Split
start: ab
steps:
  - id: ab
    kind: split
    holdout: 0.2
    holdout_next: end
    variants:
      - {name: short, weight: 1, next: a}
      - {name: long, weight: 1, next: b}
  - {id: a, kind: email, subject: Short, body: b, next: end}
  - {id: b, kind: email, subject: Long, body: b, next: end}
  - {id: end, kind: exit}
"""


async def test_split_assignment_is_sticky_per_lead(nurture: Harness) -> None:
    version = nurture.publish(SPLIT)
    plan = plan_from_dict(version.plan)
    run = uuid.uuid4().hex[:6]
    leads = [nurture.lead(f"split-{run}-{i}") for i in range(12)]
    for lead in leads:
        _, handle = await nurture.enrol(version, lead)
        await nurture.finish(handle)
    for lead in leads:
        split = plan.steps["ab"]
        assert isinstance(split, SplitPlan)
        expected = choose_variant(lead.id, "split-test", split, "ab")
        taken = dict(nurture.steps(lead))["ab"]
        assert taken == ("holdout" if expected is None else f"variant '{expected.name}'")
        subjects = [m.subject for m in nurture.channel.to(lead.id)]
        assert subjects == ([] if expected is None else ["Short" if expected.name == "short" else "Long"])


NEWSLETTER = """
id: newsletter
name: Newsletter
start: issue
steps:
  - {id: issue, kind: email, subject: "Issue", body: b, next: pause}
  - {id: pause, kind: wait, duration: 7d, next: bump}
  - {id: bump, kind: score, delta: 10, next: enough}
  - id: enough
    kind: branch
    cases:
      - {when: {type: score, score: engagement, op: gte, value: 80}, next: stop}
    default: issue
  - {id: stop, kind: exit, reason: eight issues}
"""


async def test_long_runs_continue_as_new_without_losing_state_or_resending(nurture: Harness) -> None:
    version = nurture.publish(NEWSLETTER)
    lead = nurture.lead()
    handle = await nurture.env.client.start_workflow(
        CareModelRun.run, RunInput(plan=plan_from_dict(version.plan), lead=lead, history_limit=40),
        id=f"nurture/newsletter/{lead.id}", task_queue=nurture.queue,
    )
    result = await nurture.finish(handle)
    assert result.outcome == "exit:eight issues"
    assert len(nurture.channel.to(lead.id)) == 8
    assert len({m.key for m in nurture.channel.to(lead.id)}) == 8, "visit numbers survive continue-as-new"
    assert nurture.store.get_lead(lead.id).engagement == 80
    first_run = nurture.env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    assert (await first_run.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW


REENROL = """
id: reenrol-{slug}
name: Re-enrol
start: hi
settings: {{reenrol: {policy}}}
steps:
  - {{id: hi, kind: email, subject: Hi, body: b}}
"""


async def test_reenrolment_policy(nurture: Harness) -> None:
    never = nurture.publish(REENROL.format(policy="never", slug="never"))
    again = nurture.publish(REENROL.format(policy="after_exit", slug="after-exit"))
    lead = nurture.lead()
    for version in (never, again):
        _, handle = await nurture.enrol(version, lead)
        await nurture.finish(handle)
    second_never, _ = await nurture.enrol(never, lead)
    second_again, handle = await nurture.enrol(again, lead)
    await nurture.finish(handle)
    assert second_never.status == "not_eligible" and "'never'" in second_never.reason
    assert second_again.status == "started"
    assert len(nurture.channel.to(lead.id)) == 3


ENTRY = """
id: on-form
name: Form follow-up
start: listen
settings:
  entry: {event: form.submitted, where: {form: demo}}
steps:
  - {id: listen, kind: wait_event, event: form.submitted, timeout: 1d, on_event: thanks, on_timeout: thanks}
  - {id: thanks, kind: email, subject: "Thanks for asking for a demo", body: b}
"""


async def test_an_entry_event_enrols_the_lead_and_reaches_the_new_run(nurture: Harness) -> None:
    nurture.publish(ENTRY)
    lead = nurture.lead()
    ignored = await nurture.event(lead, "form.submitted", {"form": "newsletter"})
    assert ignored.enrolled == []
    result = await nurture.event(lead, "form.submitted", {"form": "demo"})
    assert result.enrolled == [f"nurture/on-form/{lead.id}"]
    handle = nurture.env.client.get_workflow_handle_for(CareModelRun.run, result.enrolled[0])
    assert (await nurture.finish(handle)).outcome == "completed"
    assert [m.subject for m in nurture.channel.to(lead.id)] == ["Thanks for asking for a demo"]


MOVE_FROM = """
id: move-from
name: From
start: go
steps:
  - {id: go, kind: move, care_model: move-to}
"""
MOVE_TO = """
id: move-to
name: To
start: hi
steps:
  - {id: hi, kind: email, subject: Welcome to the next track, body: b}
"""


async def test_move_enrols_the_lead_in_the_other_care_model(nurture: Harness) -> None:
    nurture.publish(MOVE_TO)
    version = nurture.publish(MOVE_FROM)
    lead = nurture.lead()
    _, handle = await nurture.enrol(version, lead)
    assert (await nurture.finish(handle)).outcome == "moved:move-to"
    moved = nurture.env.client.get_workflow_handle_for(CareModelRun.run, f"nurture/move-to/{lead.id}")
    await nurture.finish(moved)
    assert [m.subject for m in nurture.channel.to(lead.id)] == ["Welcome to the next track"]


CLOCK = """
id: clock
name: Clock
start: evening
settings:
  send_window: {start: "08:00", end: "18:00", days: [mon, tue, wed, thu, fri]}
steps:
  - {id: evening, kind: wait, time_of_day: "21:30", days: [fri], next: mail}
  - {id: mail, kind: email, subject: Morning, body: b}
"""


async def test_time_of_day_and_send_window_follow_the_leads_clock(nurture: Harness) -> None:
    version = nurture.publish(CLOCK)
    lead = nurture.lead(timezone="Asia/Tokyo")
    _, handle = await nurture.enrol(version, lead)
    await nurture.finish(handle)
    tokyo = ZoneInfo("Asia/Tokyo")
    steps = {j.kind: j for j in nurture.store.journey(lead_id=lead.id)}
    held = datetime.fromtimestamp(steps["send_window"].at, tokyo)
    assert (held.weekday(), held.hour, held.minute) == (4, 21, 30), "the wait ended Friday 21:30 in Tokyo"
    sent = datetime.fromtimestamp(steps["email"].at, tokyo)
    assert (sent.weekday(), sent.hour, sent.minute) == (0, 8, 0), "held over the weekend to Monday 08:00"


CONTENT = """
id: content
name: Content
start: missing
steps:
  - {id: missing, kind: email, subject: "Hi {{ lead.nickname }}! {{ lead.company }}", body: "<b>{{ lead.company }}</b>",
     next: broken}
  - {id: broken, kind: email, subject: "Oops", body: "{{ 100 // (lead.seats | default(1) | int) }}", next: after}
  - {id: after, kind: email, subject: "Still here", body: b}
"""


async def test_content_is_escaped_missing_fields_are_empty_and_broken_content_is_skipped(nurture: Harness) -> None:
    version = nurture.publish(CONTENT)
    # Content that validates (it renders for the sample lead) and fails for this lead's own data: 0 seats.
    lead = nurture.lead(attributes={"company": "<script>alert(1)</script> & Co\r\nBcc: x@evil.test", "seats": 0})
    _, handle = await nurture.enrol(version, lead)
    assert (await nurture.finish(handle)).outcome == "completed"
    sent = nurture.channel.to(lead.id)
    assert [m.subject for m in sent] == ["Hi ! <script>alert(1)</script> & Co Bcc: x@evil.test", "Still here"]
    assert sent[0].body.startswith("<b>&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co\r\nBcc: x@evil.test</b>")
    broken = next(o for o in nurture.store.outbox(lead.id) if o.step == "broken")
    assert broken.status == "skipped" and broken.reason.startswith("content error: step broken:")


async def test_a_lead_without_a_time_zone_follows_the_care_models_default(nurture: Harness) -> None:
    version = nurture.publish(CLOCK.replace("id: clock", "id: clock-default").replace(
        "settings:", "settings:\n  default_timezone: Asia/Tokyo"))
    lead = nurture.lead()
    assert lead.timezone == ""
    _, handle = await nurture.enrol(version, lead)
    await nurture.finish(handle)
    held = next(j for j in nurture.store.journey(lead_id=lead.id) if j.kind == "send_window")
    local = datetime.fromtimestamp(held.at, ZoneInfo("Asia/Tokyo"))
    assert (local.weekday(), local.hour, local.minute) == (4, 21, 30)
