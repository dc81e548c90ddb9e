"""A stand-in for LinkedIn's REST API shapes for invitations, messages, likes and follows."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class FakeLinkedIn:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.ids = itertools.count(1)
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def auth(request: Request, call_next: Any) -> Any:
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return JSONResponse({"serviceErrorCode": 65600, "message": "Invalid access token", "status": 401},
                                    status_code=401)
            if request.headers.get("x-restli-protocol-version") != "2.0.0":
                return JSONResponse({"message": "missing X-Restli-Protocol-Version", "status": 400}, 400)
            return await call_next(request)

        @app.get("/v2/userinfo")
        def userinfo() -> dict[str, Any]:
            return {"sub": "me", "name": "Nurture Sender"}

        @app.post("/v2/{path:path}", status_code=201)
        async def act(path: str, request: Request) -> Any:
            body = await request.json()
            self.calls.append((path, body))
            rid = f"urn:li:action:{next(self.ids)}"
            return JSONResponse({"id": rid}, status_code=201, headers={"x-restli-id": rid})

        return app
