"""Lead lifecycle stages, in the order a lead normally moves through them."""

from __future__ import annotations

from typing import Literal, get_args

Stage = Literal["suspect", "prospect", "mql", "sal", "sql", "opportunity", "customer"]
STAGES: tuple[Stage, ...] = get_args(Stage)


def stage_rank(stage: str) -> int:
    return STAGES.index(stage) if stage in STAGES else -1


def check_transition(current: str, new: str, recycle: bool = False) -> str | None:
    """None when a lead may move from `current` to `new`; else why not. Leads move forward, or are recycled
    back to prospect when sales rejects them."""
    if new not in STAGES:
        return f"unknown stage '{new}'; stages are {', '.join(STAGES)}"
    if stage_rank(new) > stage_rank(current) or new == current:
        return None
    if recycle and new == "prospect":
        return None
    return f"a lead moves forward only (or is recycled to prospect): {current} -> {new} refused"
