"""Results of a care model read from what the runs recorded: per step and version, per message, and per split."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlmodel import col, select

from engine.experiments import Verdict, analyse
from engine.lifecycle import STAGES, stage_rank
from engine.rollups import median
from store.store import Store
from store.tables import (
    ArmRollup,
    CareModelVersion,
    DeliveryRow,
    Enrolment,
    Handover,
    Lead,
    OutboxRow,
    StageChange,
    StepRollup,
)

SENT = ("sent", "bounced")  # the provider took it (a bounce came back later, or at once)


@dataclass
class StepFigures:
    step: str
    version: int
    kind: str
    entered: int = 0
    now: int = 0
    passed: int = 0
    exited: int = 0
    converted: int = 0
    median_seconds: float | None = None  # median time from reaching the step to reaching the next


@dataclass
class MessageFigures:
    step: str
    channel: str
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    opened: int = 0  # an estimate: mail privacy proxies open every message they fetch
    clicked: int = 0  # unique: messages with at least one click
    unsubscribed: int = 0
    skipped: int = 0  # not sent: no consent, the frequency cap, a bounced address
    failed: int = 0

    @property
    def rates(self) -> dict[str, float | None]:
        def of(n: int, d: int) -> float | None:
            return round(n / d, 4) if d else None
        return {"delivered": of(self.delivered, self.sent), "bounced": of(self.bounced, self.sent),
                "opened": of(self.opened, self.delivered), "clicked": of(self.clicked, self.delivered),
                "unsubscribed": of(self.unsubscribed, self.delivered)}


@dataclass
class Report:
    care_model: str
    enrolled: int = 0
    converted: int = 0
    steps: list[StepFigures] = field(default_factory=list)
    messages: list[MessageFigures] = field(default_factory=list)
    splits: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)  # step -> (arm, leads, converted)
    daily: list[tuple[str, int, int]] = field(default_factory=list)  # (UTC day, leads entered, of them converted)


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def report(store: Store, care_model: str, version: int | None = None, since: float | None = None,
           until: float | None = None) -> Report:
    """Read from the running totals (store.rollups), not the history: leads are counted by the UTC day they
    entered the care model (`since` ≤ day < `until`, whole days), in `version` if given; messages by when they
    were sent, of every version (a message's figures do not depend on the plan)."""
    days = [] if since is None else [col(StepRollup.day) >= _day(since)]
    days += [] if until is None else [col(StepRollup.day) < _day(until)]
    arm_days = [] if since is None else [col(ArmRollup.day) >= _day(since)]
    arm_days += [] if until is None else [col(ArmRollup.day) < _day(until)]
    versions = [] if version is None else [col(StepRollup.version) == version]
    with store.session() as s:
        starts = {(v.version, v.plan.get("start")) for v in s.exec(
            select(CareModelVersion).where(col(CareModelVersion.care_model) == care_model))}
        totals = list(s.exec(select(StepRollup).where(col(StepRollup.care_model) == care_model, *versions, *days)))
        running = select(col(Enrolment.at_version), col(Enrolment.at_step), func.count()).where(
            col(Enrolment.care_model) == care_model, col(Enrolment.status) == "running")
        if version is not None:
            running = running.where(col(Enrolment.version) == version)
        if since is not None:
            running = running.where(col(Enrolment.started_at) >= datetime.fromtimestamp(since, UTC))
        if until is not None:
            running = running.where(col(Enrolment.started_at) < datetime.fromtimestamp(until, UTC))
        here = {(v, step): n for v, step, n in s.exec(running.group_by(col(Enrolment.at_version),
                                                                        col(Enrolment.at_step)))}
        sent = sql_select(col(OutboxRow.step), col(OutboxRow.channel), col(OutboxRow.status), func.count(),
                      func.count(col(OutboxRow.opened_at)), func.count(col(OutboxRow.clicked_at)),
                      func.count(col(OutboxRow.unsubscribed_at))).where(
            col(OutboxRow.care_model) == care_model, col(OutboxRow.audience) == "lead")
        sent = sent.where(col(OutboxRow.at) >= since) if since is not None else sent
        sent = sent.where(col(OutboxRow.at) < until) if until is not None else sent
        messages = s.execute(sent.group_by(col(OutboxRow.step), col(OutboxRow.channel), col(OutboxRow.status))).all()
        arms = list(s.exec(select(ArmRollup).where(col(ArmRollup.care_model) == care_model, *arm_days)))
    steps: dict[tuple[int, str], StepFigures] = {}
    waits: dict[tuple[int, str], Counter[str]] = defaultdict(Counter)
    daily: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for t in totals:
        f = steps.setdefault((t.version, t.step), StepFigures(t.step, t.version, t.kind))
        f.entered, f.passed, f.exited = f.entered + t.entered, f.passed + t.passed, f.exited + t.exited
        f.converted += t.converted
        waits[(t.version, t.step)].update(t.waits)
        if (t.version, t.step) in starts:  # every run enters its version's first step once
            daily[t.day][0] += t.entered
            daily[t.day][1] += t.converted
    for key, f in steps.items():
        f.now = here.get(key, 0)
        f.median_seconds = median(dict(waits[key]))
    out = Report(care_model, enrolled=sum(n for n, _ in daily.values()), converted=sum(c for _, c in daily.values()))
    out.steps = sorted(steps.values(), key=lambda f: (f.version, -f.entered, f.step))
    out.daily = [(day, n, c) for day, (n, c) in sorted(daily.items()) if n]
    figures: dict[str, MessageFigures] = {}
    for step, channel, status, n, opened, clicked, unsubscribed in messages:
        m = figures.setdefault(step, MessageFigures(step, channel))
        if status in SENT or status == "dry_run":
            m.sent += n
            m.bounced += n if status == "bounced" else 0
            m.delivered += 0 if status == "bounced" else n
            m.opened, m.clicked, m.unsubscribed = m.opened + opened, m.clicked + clicked, m.unsubscribed + unsubscribed
        elif status == "skipped":
            m.skipped += n
        elif status == "failed":
            m.failed += n
    out.messages = sorted(figures.values(), key=lambda f: f.step)
    for arm in arms:
        counts = out.splits.setdefault(arm.step, [])
        for i, (name, leads, won) in enumerate(counts):
            if name == arm.arm:
                counts[i] = (name, leads + arm.leads, won + arm.converted)
                break
        else:
            counts.append((arm.arm, arm.leads, arm.converted))
    return out


def experiments(out: Report, lift: float) -> dict[str, dict[str, Verdict]]:
    """Per split step: the variants against the first (`variants`), and everyone treated against the holdout
    (`holdout`: the care model's lift over doing nothing), each with its verdict."""
    found: dict[str, dict[str, Verdict]] = {}
    for step, arms in out.splits.items():
        variants = [a for a in arms if a[0] != "holdout"]
        held = [a for a in arms if a[0] == "holdout"]
        found[step] = {}
        if variants:
            found[step]["variants"] = analyse(sorted(variants), sorted(variants)[0][0], lift)
        if held and variants:
            treated = ("treated", sum(a[1] for a in variants), sum(a[2] for a in variants))
            found[step]["holdout"] = analyse([held[0], treated], "holdout", lift)
    return found


FUNNEL_BY = ("care_model", "entry_event", "source", "cohort")


def funnel(store: Store, by: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per group (everyone, or by the care model a lead first entered, the event that enrolled it there, its
    `source` attribute, or the week it arrived): how many leads reached each lifecycle stage or a later one, the
    share of the stage before that went on, and the median days it took from the stage before."""
    if by is not None and by not in FUNNEL_BY:
        raise ValueError(f"funnel by '{by}'? Choose one of {', '.join(FUNNEL_BY)}")
    with store.session() as s:
        leads = list(s.exec(select(Lead)))
        changes = list(s.exec(select(StageChange).order_by(col(StageChange.at))))
        origin: dict[str, str] = {}
        if by == "care_model":
            for e in s.exec(select(Enrolment).order_by(col(Enrolment.started_at))):
                origin.setdefault(e.lead_id, e.care_model)
        elif by == "entry_event":  # what started the lead's first care model: an event, or a hand (API, import)
            for lead_id, trigger in s.exec(select(col(DeliveryRow.lead_id), col(DeliveryRow.event)).where(
                    col(DeliveryRow.kind) == "enrol").order_by(col(DeliveryRow.id))):
                origin.setdefault(lead_id, str((trigger or {}).get("type") or "enrolled by hand"))
    reached: dict[str, dict[int, float]] = {}  # lead -> stage rank -> when it first stood there or beyond
    history: dict[str, list[StageChange]] = defaultdict(list)
    for c in changes:
        history[c.lead_id].append(c)
    for lead in leads:
        start = lead.created_at.timestamp()
        initial = history[lead.id][0].from_stage if history[lead.id] else lead.stage
        times = {rank: start for rank in range(stage_rank(initial) + 1)}
        for c in history[lead.id]:
            for rank in range(stage_rank(c.to_stage) + 1):
                times.setdefault(rank, c.at)
        reached[lead.id] = times

    def group_of(lead: Lead) -> str:
        if by in ("care_model", "entry_event"):
            return origin.get(lead.id, "none")
        if by == "source":
            return str(lead.attributes.get("source") or "unknown")
        if by == "cohort":
            year, week, _ = lead.created_at.isocalendar()
            return f"{year}-W{week:02d}"
        return "all"

    groups: dict[str, list[Lead]] = defaultdict(list)
    for lead in leads:
        groups[group_of(lead)].append(lead)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, members in sorted(groups.items()):
        rows, before = [], None
        for rank, stage in enumerate(STAGES):
            here = [reached[m.id] for m in members if rank in reached[m.id]]
            days = [(t[rank] - t[rank - 1]) / 86400 for t in here if rank and rank - 1 in t]
            rows.append({"stage": stage, "leads": len(here),
                         "from_previous": round(len(here) / before, 4) if before else None,
                         "median_days_from_previous": round(statistics.median(days), 2) if days else None})
            before = len(here)
        out[name] = rows
    return out


def handovers(store: Store, now: float) -> dict[str, Any]:
    """Handovers and what sales made of them: by outcome, rejection reason, rep and team; SLA breaches; the
    median time to a decision; and what became of the leads sales sent back."""
    with store.session() as s:
        rows = list(s.exec(select(Handover)))
        later = list(s.exec(select(StageChange).where(col(StageChange.lead_id).in_(
            [h.lead_id for h in rows if h.status == "rejected"]))))
        stages = dict(s.exec(select(col(Lead.id), col(Lead.stage)).where(col(Lead.id).in_(
            [h.lead_id for h in rows if h.status == "rejected"]))).all())

    def summary(group: list[Handover]) -> dict[str, Any]:
        decided = [h for h in group if h.status in ("accepted", "rejected") and h.closed_at is not None]
        hours = [(h.closed_at - h.opened_at) / 3600 for h in decided if h.closed_at is not None]
        return {"handovers": len(group), **{k: sum(1 for h in group if h.status == k)
                                            for k in ("open", "accepted", "rejected", "expired")},
                "sla_breaches": sum(1 for h in group if (h.closed_at or now) > h.due_at),  # decided late, or not yet
                "median_hours_to_decision": round(statistics.median(hours), 2) if hours else None}

    reps: dict[str, list[Handover]] = defaultdict(list)
    teams: dict[str, list[Handover]] = defaultdict(list)
    for h in rows:
        reps[h.rep_id or "unassigned"].append(h)
        teams[h.team].append(h)
    rejected = [h for h in rows if h.status == "rejected"]
    sal = stage_rank("sal")
    came_back = {h.lead_id for h in rejected for c in later
                 if c.lead_id == h.lead_id and c.at > (h.closed_at or 0) and stage_rank(c.to_stage) >= sal}
    return {**summary(rows),
            "rejected_by_reason": dict(Counter(h.reason or "no reason given" for h in rejected)),
            "by_rep": {k: summary(v) for k, v in sorted(reps.items())},
            "by_team": {k: summary(v) for k, v in sorted(teams.items())},
            "recycled": {"leads": len({h.lead_id for h in rejected}), "back_to_sales": len(came_back),
                         "now": dict(Counter(stages.get(h.lead_id, "erased") for h in rejected))}}
