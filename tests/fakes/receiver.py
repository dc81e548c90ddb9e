"""A webhook receiver that records what arrives, as an integrator's endpoint would."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook(request: Request) -> dict[str, Any]:
            self.received.append((dict(request.headers), await request.body()))
            return {"ok": True}
