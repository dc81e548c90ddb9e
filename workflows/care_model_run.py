"""CareModelRun: walks one lead through one compiled plan. Deterministic: time from workflow.now(),
randomness from a stable hash, and every effect an activity keyed so that a retry never repeats it."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from engine.conditions import evaluate, event_matches
    from engine.durations import format_duration
    from engine.lead import LeadEvent, LeadState
    from engine.plan import Plan
    from engine.schedule import choose_variant, next_time_of_day, next_window_open
    from engine.steps import (
        AnyPlanStep,
        BranchPlan,
        CrmPlan,
        EmailPlan,
        ExitPlan,
        HandoverPlan,
        MovePlan,
        ScorePlan,
        SendingPlan,
        SocialPlan,
        SplitPlan,
        WaitEventPlan,
        WaitPlan,
        WebhookPlan,
    )
    from workflows.messages import (
        Delivery,
        DeliveryResult,
        EnrolmentEnd,
        HandoverClosed,
        HandoverOpened,
        HandoverRequest,
        JourneyBatch,
        JourneyEntry,
        Migration,
        MoveRequest,
        RunInput,
        RunResult,
        RunState,
        ScoreChange,
        Where,
    )

RECENT = 30
# Patch ids: runs recorded before a change replay the old way, new runs take the new one.
LOOK_BACK = "wait-event-look-back"
DECISIONS = {"handover.accepted": "accepted", "handover.rejected": "rejected"}
_TIMEOUT = timedelta(seconds=60)
_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))


class _Stop(Exception):
    """A goal or exit condition became true: the run ends where it stands."""


class _Migrate(Exception):
    """A newer version was published with 'migrate': the lead continues on it, at the mapped step."""


@workflow.defn(name="CareModelRun")
class CareModelRun:
    @workflow.init
    def __init__(self, inp: RunInput) -> None:
        self.plan: Plan = inp.plan
        self.lead: LeadState = inp.lead
        self.state: RunState = inp.resume or RunState(enrolment=workflow.info().run_id, current=inp.plan.start,
                                                      started_at=workflow.now().timestamp())
        self.wf_id = workflow.info().workflow_id
        self.stop: str | None = None
        self.waiting: tuple[str, float | None, str] = ("starting", None, "")
        self.awaiting: tuple[str, dict[str, Any]] | None = None
        self.matched: LeadEvent | None = None
        self.decision: tuple[str, str] | None = None
        self.handover: str | None = None
        self.migration: Migration | None = None
        self.unflushed: list[JourneyEntry] = []

    # --- inputs from outside ---------------------------------------------------------------------------

    @workflow.signal(name="event")
    def on_event(self, event: LeadEvent) -> None:
        if event.id in self.state.seen_event_ids:
            return
        self.state.seen_event_ids.append(event.id)
        del self.state.seen_event_ids[:-500]
        if event.at <= 0:
            event.at = workflow.now().timestamp()
        self.lead.remember(event)
        if event.type == "lead.updated":
            self.lead.apply_update(event.data)
        if event.type == "lead.merged":  # the run carries on as the lead it was merged into, or ends as a duplicate
            self.lead.id = str(event.data.get("into") or self.lead.id)
            if self.wf_id in event.data.get("duplicates", []):
                self.stop = f"merged into {self.lead.id}"
                self.waiting = ("stopping", None, f"the lead is already in this care model as {self.lead.id}")
        if event.type in DECISIONS and self.handover and event.data.get("handover", self.handover) == self.handover:
            self.decision = (DECISIONS[event.type], str(event.data.get("reason", "")))
        if self.awaiting and event_matches(event.type, event.data, *self.awaiting):
            self.matched = event
        self._check_goals()

    @workflow.signal(name="migrate")
    def on_migrate(self, migration: Migration) -> None:
        self.migration = migration

    @workflow.query(name="where")
    def where(self) -> Where:
        state, until, why = self.waiting
        step = self.state.current
        return Where(
            care_model=self.plan.care_model, version=self.plan.version, lead_id=self.lead.id, step=step,
            kind=self.plan.steps[step].kind if step else None, state=state, until=until, why=why,
            scores={"fit": self.lead.fit, "engagement": self.lead.engagement, "total": self.lead.total},
            stage=self.lead.stage, recent=list(self.state.recent),
        )

    # --- the interpreter -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: RunInput) -> RunResult:
        outcome = "completed"
        try:
            while self.state.current is not None:
                if self.stop:
                    raise _Stop
                if self._history_full(inp.history_limit):
                    await self._flush()
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(RunInput(
                        plan=self.plan, lead=self.lead, resume=self.state, history_limit=inp.history_limit,
                    ))
                if self.migration is not None:
                    self.state.current = self._migrate(self.state.current)
                    continue
                step_id = self.state.current
                self.state.visits[step_id] = self.state.visits.get(step_id, 0) + 1
                self.state.steps_taken += 1
                self.waiting = ("running", None, "")
                try:
                    nxt, outcome_here = await self._execute(step_id, self.plan.steps[step_id])
                except _Migrate:
                    self.state.current = self._migrate(step_id)
                    continue
                if outcome_here:
                    outcome = outcome_here
                self.state.current = nxt
                self._check_goals()
        except _Stop:
            outcome = self.stop or outcome
            self._note(self.state.current or "", "stop", outcome, "condition met")
        self.waiting = ("finished", None, outcome)
        last = self.state.current
        self.state.current = None
        await self._flush()
        await self._effect(
            "finish_enrolment", EnrolmentEnd(self.wf_id, self.state.enrolment, outcome, self._now()))
        return RunResult(outcome=outcome, step=last, steps_taken=self.state.steps_taken)

    async def _execute(self, step_id: str, step: AnyPlanStep) -> tuple[str | None, str | None]:
        kind, edges, lead = step.kind, step.edges, self.lead
        match step:
            case EmailPlan() | SocialPlan() | CrmPlan() | WebhookPlan():
                result = await self._deliver(step_id, step)
                if isinstance(step, CrmPlan) and step.action == "set_stage" and result.status != "skipped":
                    lead.stage = step.stage or lead.stage
                self._note(step_id, kind, result.status, result.reason)
                return edges["next"], None
            case ScorePlan():
                setattr(lead, step.score, getattr(lead, step.score) + step.delta)
                await self._effect(
                    "adjust_score",
                    ScoreChange(self._key(step_id), lead.id, step.score, step.delta,
                                step.reason or f"step {step_id}", self._now()))
                self._note(step_id, kind, f"{step.score} {step.delta:+g}", step.reason)
                return edges["next"], None
            case WaitPlan():
                target = self._wait_target(step)
                self._note(step_id, kind, f"until {_iso(target)}", "")
                await self._sleep_until(target, "waiting", f"wait step {step_id}")
                return edges["next"], None
            case WaitEventPlan():
                return await self._wait_event(step_id, step), None
            case BranchPlan():
                now = self._now()
                whys = []
                for case in step.cases:
                    ok, why = evaluate(case.when, lead, now)
                    if ok:
                        self._note(step_id, kind, f"took '{case.label}'", why)
                        return case.next, None
                    whys.append(why)
                self._note(step_id, kind, "took 'default'", "no case matched: " + "; ".join(whys))
                return edges["default"], None
            case SplitPlan():
                variant = choose_variant(lead.id, self.plan.care_model, step, step_id)
                if variant is None:
                    self._note(step_id, kind, "holdout", f"{step.holdout:.0%} held out by stable hash")
                    return edges.get("holdout_next"), None
                self._note(step_id, kind, f"variant '{variant.name}'", "assigned by stable hash")
                return variant.next, None
            case HandoverPlan():
                return await self._handover(step_id, step), None
            case MovePlan():
                status = await self._effect(
                    "move_lead", MoveRequest(self._key(step_id), lead, self.plan.care_model, step.care_model),
                    result_type=str)
                self._note(step_id, kind, f"moved to {step.care_model}", status)
                return None, f"moved:{step.care_model}"
            case ExitPlan():
                self._note(step_id, kind, "exit", step.reason)
                return None, f"exit:{step.reason}"
        raise ValueError(f"plan step {step_id} has unknown kind {kind!r}")

    async def _deliver(self, step_id: str, step: SendingPlan) -> DeliveryResult:
        """Sends once; with `on_cap: defer`, a message over the frequency cap waits until the cap allows it (and
        the send window opens) instead of being dropped, each try under a key of its own."""
        cap, key, tries = self.plan.settings.frequency_cap, self._key(step_id), 0
        while True:
            if step.kind in ("email", "social"):
                await self._hold_for_send_window(step_id)
            result: DeliveryResult = await self._effect(
                "deliver",
                Delivery(key=key if not tries else f"{key}/deferred-{tries}", lead=self.lead,
                         care_model=self.plan.care_model, version=self.plan.version, step=step_id, step_spec=step,
                         at=self._now(), frequency_cap=cap),
                result_type=DeliveryResult)
            if not (cap is not None and cap.on_cap == "defer" and result.status == "skipped" and result.retry_at):
                return result
            tries += 1
            self._note(step_id, "frequency_cap", f"deferred until {_iso(result.retry_at)}", result.reason)
            await self._sleep_until(result.retry_at, "frequency_cap", f"frequency cap for {step_id}")

    async def _wait_event(self, step_id: str, step: WaitEventPlan) -> str | None:
        self.awaiting, self.matched = (step.event, step.where), None
        early = self._happened_already(step) if workflow.patched(LOOK_BACK) else None
        if early is not None:
            self.awaiting = None
            self.state.consumed.append(early.id)
            ago = format_duration(max(int(self._now() - early.at), 60))
            self._note(step_id, "wait_event", f"got {early.type}", f"event {early.id}, {ago} before the wait began")
            return step.edges["on_event"]
        deadline = self._now() + step.timeout_seconds
        self._note(step_id, "wait_event", f"waiting for {step.event}",
                   f"up to {step.timeout_text or format_duration(step.timeout_seconds)}")
        await self._sleep_until(deadline, "waiting_for_event", f"{step.event} at {step_id}",
                                lambda: self.matched is not None)
        hit, self.awaiting, self.matched = self.matched, None, None
        if hit is not None:
            self.state.consumed.append(hit.id)
            self._note(step_id, "wait_event", f"got {hit.type}", f"event {hit.id}")
            return step.edges["on_event"]
        waited = step.timeout_text or format_duration(step.timeout_seconds)
        self._note(step_id, "wait_event", "timed out", f"no {step.event} in {waited}")
        return step.edges["on_timeout"]

    async def _handover(self, step_id: str, step: HandoverPlan) -> str | None:
        key = self._key(step_id)
        now = self._now()
        due = now + step.sla_seconds
        self.decision, self.handover = None, key
        opened: HandoverOpened | None = await self._effect(
            "open_handover",
            HandoverRequest(key, self.lead.id, self.plan.care_model, step_id, step.team, step.routing, step.note,
                            now, due),
            result_type=HandoverOpened)
        to = f" → {opened.rep_id} ({opened.routed_by})" if opened and opened.rep_id else ""
        self._note(step_id, "handover", f"handed to {step.team}{to}",
                   f"SLA {step.sla_text or format_duration(step.sla_seconds)}")
        try:
            await self._sleep_until(due, "awaiting_sales", f"handover {key}", lambda: self.decision is not None,
                                    interruptible=False)
        except _Stop:
            await self._effect(
                "close_handover", HandoverClosed(key, "withdrawn", self.stop or "", self._now()))
            raise
        outcome, reason = self.decision or ("expired", "SLA passed without a decision")
        self.decision, self.handover = None, None
        # The lead's stage after sales decided (SAL, back to prospect): goals, exits and branches see it at once.
        # (Histories from before this returned None; they replay unchanged.)
        stage = await self._effect("close_handover", HandoverClosed(key, outcome, reason, self._now()))
        if isinstance(stage, str) and stage:
            self.lead.stage = stage
        self._note(step_id, "handover", outcome, reason)
        return step.edges[f"on_{outcome}"]

    # --- helpers ---------------------------------------------------------------------------------------

    async def _effect(self, activity: str, arg: Any, result_type: type | None = None) -> Any:
        return await workflow.execute_activity(activity, arg, result_type=result_type,
                                               start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY)

    async def _sleep_until(self, target: float, state: str, why: str, done: Any = None,
                           interruptible: bool = True) -> None:
        """Waits until `target`, `done()`, a goal, or (when interruptible) a migration to a newer version."""
        self.waiting = (state, target, why)
        await self._flush()
        remaining = target - self._now()
        migrating = (lambda: self.migration is not None) if interruptible else (lambda: False)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self.stop is not None or (done is not None and done()) or migrating(),
                timeout=timedelta(seconds=max(remaining, 0.001)),
            )
        if self.stop:
            raise _Stop
        if migrating():
            raise _Migrate
        self.waiting = ("running", None, "")

    async def _hold_for_send_window(self, step_id: str) -> None:
        window = self.plan.settings.send_window
        if not window:
            return
        opens = next_window_open(self._now(), self._tz(), window)
        if opens is not None:
            self._note(step_id, "send_window", f"held until {_iso(opens)}", "outside the send window")
            await self._sleep_until(opens, "send_window", f"send window for {step_id}")

    def _happened_already(self, step: WaitEventPlan) -> LeadEvent | None:
        """The latest matching event within the step's look-back that no wait has taken yet."""
        if step.look_back == "none":
            return None
        now = self._now()
        began = self.state.started_at or workflow.info().start_time.timestamp()
        since = began if step.look_back == "enrolment" else now - step.look_back_seconds
        for event in reversed(self.lead.events):
            if (since <= event.at <= now and event.id not in self.state.consumed
                    and event_matches(event.type, event.data, step.event, step.where)):
                return event
        return None

    def _wait_target(self, step: WaitPlan) -> float:
        now = self._now()
        if step.mode == "duration":
            return now + step.seconds
        if step.mode == "until":
            return max(step.at, now)
        return next_time_of_day(now, self._tz(), step.minute, step.days or [])

    def _migrate(self, at_step: str) -> str | None:
        migration, self.migration = self.migration, None
        if migration is None:
            return at_step
        old = self.plan.version
        target = migration.mapping.get(at_step, at_step)
        if target not in migration.plan.steps:
            target = migration.plan.start
        self.plan, self.awaiting, self.matched = migration.plan, None, None
        self._note(target, "migrate", f"moved to version {self.plan.version}", f"was at {at_step} of version {old}")
        return target

    def _check_goals(self) -> None:
        if self.stop or self.lead is None:
            return
        now = self._now()
        for prefix, rules in (("goal", self.plan.settings.goals), ("exited", self.plan.settings.exit_when)):
            for rule in rules:
                ok, why = evaluate(rule.when, self.lead, now)
                if ok:
                    self.stop = f"{prefix}:{rule.name}"
                    self.waiting = ("stopping", None, why)
                    return

    def _history_full(self, limit: int) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > limit

    def _key(self, step_id: str) -> str:
        return f"{self.wf_id}/{self.state.enrolment}/{step_id}/{self.state.visits[step_id]}"

    def _tz(self) -> str:
        return self.lead.timezone or self.plan.settings.default_timezone

    def _now(self) -> float:
        return workflow.now().timestamp()

    def _note(self, step_id: str, kind: str, outcome: str, why: str) -> None:
        self.state.seq += 1
        entry = JourneyEntry(self.state.seq, step_id, kind, self._now(), outcome, why)
        self.unflushed.append(entry)
        self.state.recent.append(entry)
        del self.state.recent[:-RECENT]

    async def _flush(self) -> None:
        if not self.unflushed:
            return
        batch, self.unflushed = self.unflushed, []
        await self._effect(
            "record_journey",
            JourneyBatch(self.wf_id, self.state.enrolment, self.lead.id, self.plan.care_model, self.plan.version,
                         batch))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
