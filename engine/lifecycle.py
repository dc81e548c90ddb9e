"""Lead lifecycle stages, in the order a lead normally moves through them."""

from __future__ import annotations

from typing import Literal, get_args

Stage = Literal["suspect", "prospect", "mql", "sal", "sql", "opportunity", "customer"]
STAGES: tuple[Stage, ...] = get_args(Stage)


def stage_rank(stage: str) -> int:
    return STAGES.index(stage) if stage in STAGES else -1
