"""How fast the designer answers for a large care model: the whole editor page, and the fragment an edit swaps in
(a builder save), for a 200-step draft. Aims on this machine: page under 150 ms, fragment under 100 ms. Prints
figures, in-process through ASGI, so the times are the app's own, not the network's."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from designer.app import create_app
from nurture.settings import Settings
from store.designs import Designs
from store.store import Store
from tests.accounts import sign_in
from tests.browserless import form_pairs


def big_model(steps: int = 200) -> dict[str, Any]:
    """A chain of email, wait and branch steps; every tenth is a branch on a two-row condition."""
    out: list[dict[str, Any]] = []
    for i in range(steps - 1):
        after = f"s{i + 1}"
        if i % 10 == 9:
            out.append({"id": f"s{i}", "kind": "branch", "default": after, "cases": [{"label": "hot", "next": after,
                        "when": {"type": "all", "conditions": [
                            {"type": "score", "score": "total", "op": "gte", "value": 60},
                            {"type": "engagement", "event": "email.clicked", "within": "14d"}]}}]})
        elif i % 2:
            out.append({"id": f"s{i}", "kind": "wait", "duration": "1d", "next": after})
        else:
            out.append({"id": f"s{i}", "kind": "email", "subject": f"Email {i}", "body": "<p>Hi</p>", "next": after})
    out.append({"id": f"s{steps - 1}", "kind": "exit", "reason": "done"})
    return {"schema_version": 1, "id": "big", "name": "Big", "start": "s0", "steps": out}


async def timed(call: Any, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = await call()
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.status_code
    return times


async def main(repeats: int = 15) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'nurture.db'}")
        Designs(store).save("big", big_model(), by="bench", what="created")
        app = create_app(Settings(data_dir=Path(tmp), temporal_target="127.0.0.1:1"), store=store)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nurture") as client:
            await sign_in(client, store)
            cold = await timed(lambda: client.get("/designer/big"), 1)  # compiles the page's templates once
            page = await timed(lambda: client.get("/designer/big"), repeats)
            url = "/designer/big/steps/s9"
            pairs = form_pairs((await client.get(url)).text, "step-form")
            fragment = await timed(lambda: client.post(url, data=dict(pairs), params={"autosave": "1"}), repeats)
            opened = await timed(lambda: client.get(url), repeats)
    print(f"200-step care model, first editor page after start (templates compiled): {cold[0]:.0f} ms")
    for name, times, aim in (("editor page", page, 150), ("step form opened (fragment)", opened, 100),
                             ("builder change saved (fragment)", fragment, 100)):
        print(f"200-step care model, {name}: median {statistics.median(times):.0f} ms, "
              f"max {max(times):.0f} ms over {repeats} (aim under {aim} ms)")


if __name__ == "__main__":
    asyncio.run(main())
