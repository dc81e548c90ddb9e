"""How long `nurture simulate` takes for a 90-day care model (target: about a second). Prints figures."""

from __future__ import annotations

import asyncio
import statistics

from engine.lead import LeadState
from engine.validator import load_or_raise
from workflows.simulate import ScriptedEvent, simulate

NINETY_DAYS = """
id: ninety-days
name: Ninety days
start: e1
steps:
  - {id: e1, kind: email, subject: One, body: b, next: w1}
  - {id: w1, kind: wait, duration: 30d, next: e2}
  - {id: e2, kind: email, subject: Two, body: b, next: l1}
  - {id: l1, kind: wait_event, event: email.clicked, timeout: 30d, on_event: s1, on_timeout: e3}
  - {id: s1, kind: score, delta: 10, next: e3}
  - {id: e3, kind: email, subject: Three, body: b, next: w3}
  - {id: w3, kind: wait, duration: 35d, next: end}
  - {id: end, kind: exit, reason: ninety days}
"""


async def main(repeats: int = 5) -> None:
    doc = load_or_raise(NINETY_DAYS)
    times = []
    for i in range(repeats):
        result = await simulate(doc, LeadState(id=f"bench-{i}"), [ScriptedEvent(55 * 86400, "email.clicked")])
        assert result.outcome == "exit:ninety days", result.outcome
        times.append(result.wall_seconds)
    span = result.steps[-1].offset / 86400
    print(f"simulated {span:.0f} days, {len(result.steps)} steps: median {statistics.median(times):.2f}s, "
          f"min {min(times):.2f}s, max {max(times):.2f}s over {repeats} runs")


if __name__ == "__main__":
    asyncio.run(main())
