"""Calendar arithmetic in the lead's time zone, and sticky split assignment. Pure functions."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from engine.plan import WindowPlan
from engine.steps import SplitPlan, VariantPlan


def _local(now: float, tz: str) -> datetime:
    return datetime.fromtimestamp(now, ZoneInfo(tz))


def next_time_of_day(now: float, tz: str, minute: int, days: list[int]) -> float:
    """The first moment at or after `now` when the lead's clock shows `minute` on one of `days` (0=Mon)."""
    local = _local(now, tz)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        if day.weekday() not in days:
            continue
        candidate = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=ZoneInfo(tz))
        if candidate.timestamp() >= now:
            return candidate.timestamp()
    raise ValueError("no weekday given")


def next_window_open(now: float, tz: str, window: WindowPlan) -> float | None:
    """None when `now` lies inside the send window, else when it next opens."""
    local = _local(now, tz)
    minute = local.hour * 60 + local.minute
    if local.weekday() in window.days and window.start_minute <= minute < window.end_minute:
        return None
    return next_time_of_day(now, tz, window.start_minute, window.days)


def bucket(*parts: str) -> float:
    """A stable number in [0, 1) for the same inputs, whatever the process or machine."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose_variant(lead_id: str, care_model: str, step: SplitPlan, step_id: str) -> VariantPlan | None:
    """The lead's variant of a split, or None for the holdout: the same lead always lands in the same arm."""
    point = bucket(care_model, step_id, lead_id)
    if point < step.holdout:
        return None
    point = (point - step.holdout) / (1 - step.holdout)
    total = sum(v.weight for v in step.variants)
    running = 0.0
    for variant in step.variants:
        running += variant.weight / total
        if point < running:
            return variant
    return step.variants[-1]
