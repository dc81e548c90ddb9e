"""Results of a care model read from what the runs recorded: per step and version, per message, and per split."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from engine.experiments import Verdict, analyse
from engine.lifecycle import STAGES, stage_rank
from store.store import Store
from store.tables import Enrolment, EventRow, Handover, JourneyRow, Lead, OutboxRow, StageChange

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


def report(store: Store, care_model: str, version: int | None = None, since: float | None = None,
           until: float | None = None) -> Report:
    """Leads are counted by when they entered the care model (`since` ≤ start < `until`), in `version` if given,
    and their messages with them."""
    with store.session() as s:
        query = select(Enrolment).where(col(Enrolment.care_model) == care_model)
        if version is not None:
            query = query.where(col(Enrolment.version) == version)
        enrolments = {e.enrolment: e for e in s.exec(query)
                      if (since is None or e.started_at.timestamp() >= since)
                      and (until is None or e.started_at.timestamp() < until)}
        rows = [r for r in s.exec(select(JourneyRow).where(col(JourneyRow.care_model) == care_model)
                                  .order_by(col(JourneyRow.enrolment), col(JourneyRow.seq)))
                if r.enrolment in enrolments]
        sends = [o for o in s.exec(select(OutboxRow).where(col(OutboxRow.care_model) == care_model,
                                                           col(OutboxRow.audience) == "lead"))]
        leads = sorted({o.lead_id for o in sends})
        reactions = list(s.exec(select(EventRow).where(
            col(EventRow.lead_id).in_(leads),
            col(EventRow.type).in_(["email.opened", "email.clicked", "lead.unsubscribed"])))) if leads else []
    converted = {e for e, row in enrolments.items() if row.outcome.startswith("goal:")}
    out = Report(care_model, enrolled=len(enrolments), converted=len(converted))
    entered = Counter(e.started_at.strftime("%Y-%m-%d") for e in enrolments.values())
    won = Counter(enrolments[e].started_at.strftime("%Y-%m-%d") for e in converted)
    out.daily = [(day, entered[day], won[day]) for day in sorted(entered)]
    _steps(out, rows, enrolments, converted)
    # A message's key names its run (`<workflow>/<enrolment>/<step>/<visit>`): counted with the run's lead.
    _messages(out, [o for o in sends if not enrolments.keys().isdisjoint(o.key.split("/"))], reactions)
    return out


def _steps(out: Report, rows: list[JourneyRow], enrolments: dict[str, Enrolment], converted: set[str]) -> None:
    figures: dict[tuple[int, str], StepFigures] = {}
    waits: dict[tuple[int, str], list[float]] = defaultdict(list)
    by_enrolment: dict[str, list[JourneyRow]] = defaultdict(list)
    for row in rows:
        by_enrolment[row.enrolment].append(row)
    for enrolment, journey in by_enrolment.items():
        running = enrolments[enrolment].status == "running"
        seen: set[tuple[int, str]] = set()
        for n, row in enumerate(journey):
            key = (row.version, row.step)
            f = figures.setdefault(key, StepFigures(row.step, row.version, row.kind))
            if key not in seen:
                f.entered += 1
                f.converted += enrolment in converted
                seen.add(key)
            if n + 1 < len(journey):
                waits[key].append(journey[n + 1].at - row.at)
            last = n + 1 == len(journey)
            if last and running:
                f.now += 1
            elif last:
                f.exited += 1
            elif key != (journey[n + 1].version, journey[n + 1].step):
                f.passed += 1
        for split in (r for r in journey if r.kind == "split"):
            arm = "holdout" if split.outcome == "holdout" else split.outcome.removeprefix("variant '").rstrip("'")
            counts = out.splits.setdefault(split.step, [])
            _count(counts, arm, enrolment in converted)
    for key, f in figures.items():
        f.median_seconds = statistics.median(waits[key]) if waits[key] else None
    out.steps = sorted(figures.values(), key=lambda f: (f.version, -f.entered, f.step))


def _count(counts: list[tuple[str, int, int]], arm: str, converted: bool) -> None:
    for i, (name, leads, conversions) in enumerate(counts):
        if name == arm:
            counts[i] = (name, leads + 1, conversions + converted)
            return
    counts.append((arm, 1, int(converted)))


def _messages(out: Report, sends: list[OutboxRow], reactions: list[EventRow]) -> None:
    opened = {e.data.get("message") for e in reactions if e.type == "email.opened"}
    clicked = {e.data.get("message") for e in reactions if e.type == "email.clicked"}
    unsubscribed = {e.data.get("message") for e in reactions if e.type == "lead.unsubscribed"}
    figures: dict[str, MessageFigures] = {}
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    for o in sends:
        f = figures.setdefault(o.step, MessageFigures(o.step, o.channel))
        statuses[o.step][o.status] += 1
        if o.status in SENT or o.status == "dry_run":
            f.sent += 1
            f.bounced += o.status == "bounced"
            f.delivered += o.status != "bounced"
            f.opened += o.key in opened
            f.clicked += o.key in clicked
            f.unsubscribed += o.key in unsubscribed
        elif o.status == "skipped":
            f.skipped += 1
        elif o.status == "failed":
            f.failed += 1
    out.messages = sorted(figures.values(), key=lambda f: f.step)


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


FUNNEL_BY = ("care_model", "first_event", "source", "cohort")


def funnel(store: Store, by: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per group (everyone, or by the care model a lead first entered, its first event, its `source` attribute,
    or the week it arrived): how many leads reached each lifecycle stage or a later one, the share of the stage
    before that went on, and the median days it took from the stage before."""
    if by is not None and by not in FUNNEL_BY:
        raise ValueError(f"funnel by '{by}'? Choose one of {', '.join(FUNNEL_BY)}")
    with store.session() as s:
        leads = list(s.exec(select(Lead)))
        changes = list(s.exec(select(StageChange).order_by(col(StageChange.at))))
        origin: dict[str, str] = {}
        if by == "care_model":
            for e in s.exec(select(Enrolment).order_by(col(Enrolment.started_at))):
                origin.setdefault(e.lead_id, e.care_model)
        elif by == "first_event":
            for lead_id, kind in s.exec(select(col(EventRow.lead_id), col(EventRow.type)).order_by(col(EventRow.at))):
                origin.setdefault(lead_id, kind)
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
        if by in ("care_model", "first_event"):
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
