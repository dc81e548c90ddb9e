"""Served to email recipients: tracked links, the open pixel and one-click unsubscribe (RFC 8058)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from designer.auth import public
from designer.deps import send_event, settings
from designer.templating import TEMPLATES
from engine.tracking import unsign

router = APIRouter(include_in_schema=False)
PUBLIC = public("links in emails to leads, each signed for one lead and message")
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


def _read(request: Request, token: str) -> dict[str, Any]:
    try:
        return unsign(token, settings(request).secret())
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/t/c/{token}", dependencies=[PUBLIC])
async def click(request: Request, token: str) -> RedirectResponse:
    data = _read(request, token)
    await send_event(request, data["l"], "email.clicked", {"message": data["k"], "url": data["u"]})
    return RedirectResponse(data["u"], status_code=302)


@router.get("/t/o/{token}", dependencies=[PUBLIC])
async def opened(request: Request, token: str) -> Response:
    data = _read(request, token)
    await send_event(request, data["l"], "email.opened", {"message": data["k"]}, event_id=f"open:{data['k']}")
    return Response(PIXEL, media_type="image/gif", headers={"cache-control": "no-store"})


@router.get("/u/{token}", response_class=HTMLResponse, dependencies=[PUBLIC])
def unsubscribe_page(request: Request, token: str) -> Response:
    _read(request, token)  # link scanners may GET this; only the button (a POST) unsubscribes
    return TEMPLATES.TemplateResponse(request, "unsubscribe.html", {"token": token, "done": False})


@router.post("/u/{token}", response_class=HTMLResponse, dependencies=[PUBLIC])
async def unsubscribe(request: Request, token: str) -> Response:
    data = _read(request, token)
    # A fresh id each time: after a recorded re-subscribe, this link must unsubscribe again.
    await send_event(request, data["l"], "lead.unsubscribed", {"message": data["k"]},
                     event_id=f"unsubscribe:{data['k']}:{uuid.uuid4().hex[:12]}")
    return TEMPLATES.TemplateResponse(request, "unsubscribe.html", {"token": token, "done": True})
