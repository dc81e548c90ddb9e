"""The content editor's live preview and test send: a message as a chosen lead would see it, and a test copy to any
address through the configured connector. A test is never an outbox row, never counted, never capped."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from connectors.base import ConnectorError, Message
from designer.auth import actor, allow
from designer.deps import audit, connectors, store
from designer.sales_api import lead_visible
from designer.templating import TEMPLATES
from engine import editing
from engine.content import SAMPLE, Preview, preview
from engine.lead import LeadState
from store.designs import Designs
from store.store import lead_state

router = APIRouter(include_in_schema=False)
READ, WRITE = allow("care-models:read"), allow("care-models:write")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TEST_HEADER = "X-Nurture-Test"


def _step(request: Request, model: str, step_id: str) -> dict[str, Any]:
    doc = Designs(store(request)).draft(model)
    step = editing.find(doc, step_id) if doc is not None else None
    if step is None or step.get("kind") not in ("email", "social"):
        raise HTTPException(404, f"no email or social step '{step_id}' in '{model}'")
    return step


def _lead(request: Request, ref: str) -> tuple[LeadState, str]:
    """The lead to preview for: an id or an email typed or picked, or the sample lead when none is given."""
    ref = ref.strip()
    if not ref:
        return SAMPLE, ""
    found = store(request).get_lead(ref) or next(iter(Designs(store(request)).search_leads(ref, limit=1)), None)
    if found is None or not lead_visible(request, found.id):
        return SAMPLE, f"no lead '{ref}': showing the sample lead"
    return lead_state(found), ""


def _render(step: dict[str, Any], form: dict[str, str], lead: LeadState) -> Preview:
    """What is typed now (the form), or the saved step when the form does not carry the field."""
    if step.get("kind") == "email":
        return preview(form.get("subject", str(step.get("subject", ""))), form.get("body", str(step.get("body", ""))),
                       lead)
    return preview("", form.get("message", str(step.get("message", ""))), lead, html=False)


@router.post("/designer/{model}/steps/{step_id}/preview", response_class=HTMLResponse, dependencies=[READ])
async def show_preview(request: Request, model: str, step_id: str) -> Response:
    step = _step(request, model, step_id)
    form = {k: str(v) for k, v in (await request.form()).items()}
    lead, note = _lead(request, form.get("lead", ""))
    shown = _render(step, form, lead)
    return TEMPLATES.TemplateResponse(request, "designer/preview.html", {
        "shown": shown, "lead": lead, "note": note, "kind": step.get("kind")})


@router.post("/designer/{model}/steps/{step_id}/test-send", response_class=HTMLResponse, dependencies=[WRITE])
async def test_send(request: Request, model: str, step_id: str, to: Annotated[str, Form()] = "") -> Response:
    step = _step(request, model, step_id)
    form = {k: str(v) for k, v in (await request.form()).items()}
    lead, _ = _lead(request, form.get("lead", ""))
    shown = _render(step, form, lead)
    to = to.strip()
    if step.get("kind") != "email":
        result, ok = "A test is sent for email steps; social posts show in the preview only.", False
    elif not _ADDRESS.match(to):
        result, ok = f"Send test to: '{to}' is not an email address (like name@example.com).", False
    elif store(request).suppressed(to):
        result, ok = f"Not sent: {to} has unsubscribed or was erased, and Nurture never emails it.", False
    elif shown.problems and not shown.html:
        result, ok = f"Not sent: {shown.problems[0]}", False
    else:
        result, ok = _send(request, step, to, lead, shown)
    return TEMPLATES.TemplateResponse(request, "designer/preview.html", {
        "result": result, "ok": ok, "only_result": True}, status_code=200 if ok else 422)


def _send(request: Request, step: dict[str, Any], to: str, lead: LeadState, shown: Preview) -> tuple[str, bool]:
    channel = str(step.get("connector") or "email")
    try:
        connector = connectors(request).get(channel)
    except Exception as exc:  # a connectors file that does not load: the admin's Connectors page says more
        return f"Not sent: the connectors file does not load ({exc}); see Connectors.", False
    if connector is None:
        return f"No connector is configured for '{channel}'.", False
    message = Message(key=f"test-{uuid.uuid4().hex}", channel="email", lead_id=lead.id, to=to,
                      subject=f"[Test] {shown.subject}", body=shown.html, action="send", text=shown.text,
                      headers={TEST_HEADER: "true"})
    try:
        receipt = connector.send(message)
    except ConnectorError as exc:
        return f"Not sent: {exc}", False
    audit(request).add(actor(request), "email.test_sent", f"step:{step.get('id')}", to=to, lead=lead.id)
    if receipt.status == "dry_run":
        return (f"Email runs in dry-run here, so nothing left the machine ({receipt.detail}). An admin configures "
                "a real email connector under Connectors."), False
    return f"Test sent to {to} as {lead.email or lead.id} would see it.", True
