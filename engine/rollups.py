"""What a run's recorded steps add to its care model's running totals, so a report reads totals instead of every
journey row. Pure: rows in, increments out. The same arithmetic serves new rows as they are recorded and a
rebuild from history."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

# Rows a run writes about itself at a step (a goal met, a hold), not the step's own kind.
NOTES = frozenset({"stop", "migrate", "frequency_cap", "send_window"})
BASE = 1.01  # time-in-step buckets 1 % wide: the median read back is within half a percent


class Visit(NamedTuple):
    """One journey row, as the totals need it."""

    seq: int
    version: int
    step: str
    kind: str
    at: float
    outcome: str


Key = tuple[int, str]  # (version, step)


@dataclass
class Tally:
    entered: Counter[Key] = field(default_factory=Counter)
    passed: Counter[Key] = field(default_factory=Counter)
    exited: Counter[Key] = field(default_factory=Counter)
    converted: Counter[Key] = field(default_factory=Counter)
    kinds: dict[Key, str] = field(default_factory=dict)
    waits: dict[Key, Counter[str]] = field(default_factory=dict)
    arms: Counter[tuple[str, str]] = field(default_factory=Counter)  # (split step, arm): leads
    arms_converted: Counter[tuple[str, str]] = field(default_factory=Counter)


def bucket(seconds: float) -> str:
    return str(math.floor(math.log(max(seconds, 1.0), BASE)))


def median(waits: dict[str, int]) -> float | None:
    """The median of the times counted in `waits`, read back from their buckets (each at its middle)."""
    total = sum(waits.values())
    if not total:
        return None
    seen = 0
    for key in sorted(waits, key=int):
        seen += waits[key]
        if seen * 2 >= total:
            return 0.0 if int(key) == 0 else BASE ** (int(key) + 0.5)
    return None


def arm_of(visit: Visit) -> str:
    return "holdout" if visit.outcome == "holdout" else visit.outcome.removeprefix("variant '").rstrip("'")


def recorded(before: list[Visit], new: list[Visit]) -> Tally:
    """New rows of one run, after the rows it had (both in seq order): who entered a step for the first time,
    who passed on from one, how long they stayed, which arm of a split they took."""
    tally = Tally()
    seen = {(v.version, v.step) for v in before}
    previous = before[-1] if before else None
    for visit in new:
        key = (visit.version, visit.step)
        if visit.kind not in NOTES:
            tally.kinds.setdefault(key, visit.kind)
        if key not in seen:
            tally.entered[key] += 1
            seen.add(key)
        if previous is not None:
            last = (previous.version, previous.step)
            tally.waits.setdefault(last, Counter())[bucket(visit.at - previous.at)] += 1
            if last != key:
                tally.passed[last] += 1
        if visit.kind == "split":
            tally.arms[(visit.step, arm_of(visit))] += 1
        previous = visit
    return tally


def ended(visits: list[Visit], converted: bool) -> Tally:
    """A run's end: it left from its last step; reaching a goal counts once for every step and arm on its way."""
    tally = Tally()
    if visits:
        tally.exited[(visits[-1].version, visits[-1].step)] += 1
    if converted:
        for key in {(v.version, v.step) for v in visits}:
            tally.converted[key] += 1
        for visit in visits:
            if visit.kind == "split":
                tally.arms_converted[(visit.step, arm_of(visit))] += 1
    return tally


def merge(into: Tally, other: Tally) -> Tally:
    """Two tallies as one: totals for many runs are added up before they are written."""
    for name in ("entered", "passed", "exited", "converted", "arms", "arms_converted"):
        getattr(into, name).update(getattr(other, name))
    for key, kind in other.kinds.items():
        into.kinds.setdefault(key, kind)
    for key, waits in other.waits.items():
        into.waits.setdefault(key, Counter()).update(waits)
    return into
