"""The sales inbox: the signed-in rep's open handovers (a manager's: the team's) with each lead's score and
journey, the accept / reject form, reassignment, and the signed one-time links in rep emails."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from designer.auth import actor, allow, principal, public, sign_in
from designer.deps import accounts, audit, settings, store
from designer.sales_api import Decision, decide_handover, manages, may_decide, may_see
from designer.templating import TEMPLATES
from engine import editing, links
from store.sales import SalesStore
from store.scores import explain
from store.tables import Handover, Rep

router = APIRouter(include_in_schema=False)


@router.post("/inbox/{key:path}/decision", dependencies=[allow("handovers:own")])
async def decide_form(request: Request, key: str, decision: Annotated[str, Form()],
                      reason: Annotated[str, Form()] = "") -> Response:
    """From the inbox (htmx), the answer is the card itself, decided and without buttons, or with the error."""
    rep = principal(request).rep_id
    handover = SalesStore(store(request)).handover(key)
    error, status = "", 422
    try:
        parsed = Decision.model_validate({"decision": decision, "reason": reason, "rep": rep})
        if handover is None:
            raise HTTPException(404, f"no handover '{key}'")
        may_decide(request, handover)
        await decide_handover(request, key, parsed)
    except ValidationError as exc:
        error = exc.errors()[0]["msg"]
    except HTTPException as exc:  # shown on the page the rep is looking at, not as bare JSON
        error, status = str(exc.detail), exc.status_code
    if request.headers.get("hx-request") and handover is not None and may_see(request, handover):
        item = _item(request, handover, SalesStore(store(request)).reps())
        if item is not None:
            return TEMPLATES.TemplateResponse(request, "inbox_card.html", {"item": item | {"error": error},
                                                                           "now": time.time()},
                                              status_code=422 if error else 200)  # htmx swaps 422
    if error:
        return _inbox(request, error=error, status=status)
    return RedirectResponse(f"/inbox?done={parsed.decision}", status_code=303)


@router.post("/inbox/{key:path}/reassign", dependencies=[allow("handovers:team")])
def reassign(request: Request, key: str, rep: Annotated[str, Form()]) -> Response:
    sales = SalesStore(store(request))
    handover = sales.handover(key)
    if handover is None:
        raise HTTPException(404, f"no handover '{key}'")
    if not manages(request, handover):
        return _inbox(request, error=f"handover '{key}' belongs to a team you do not manage", status=403)
    try:
        sales.reassign(key, rep, actor(request))
    except ValueError as exc:
        return _inbox(request, error=str(exc))
    audit(request).add(actor(request), "handover.reassigned", f"handover:{key}", was=handover.rep_id, now=rep)
    return RedirectResponse("/inbox?done=reassign", status_code=303)


@router.get("/inbox", response_class=HTMLResponse, dependencies=[allow("handovers:own")])
def inbox(request: Request, done: str = "", rep: str = "") -> Response:
    return _inbox(request, done, rep=rep)


def _inbox(request: Request, done: str = "", error: str = "", status: int = 422, rep: str = "") -> Response:
    db, sales, who = store(request), SalesStore(store(request)), principal(request)
    reps = sales.reps()
    me = next((r for r in reps if r.id == who.rep_id), None)
    items = [item for handover in db.handovers("open")
             if may_see(request, handover) and not (rep and handover.rep_id != rep)
             and (item := _item(request, handover, reps)) is not None]
    return TEMPLATES.TemplateResponse(request, "inbox.html", {
        "me": me, "items": items, "done": done, "error": error, "now": time.time(), "rep": rep,
        "reps": reps if who.may("admin") else []}, status_code=status if error else 200)


def _item(request: Request, handover: Handover, reps: list[Rep]) -> dict[str, Any] | None:
    db, sales = store(request), SalesStore(store(request))
    lead = db.get_lead(handover.lead_id)
    if lead is None:
        return None
    decision = db.event(f"{handover.key}/decision")  # taken, though the care model may not have moved on yet
    decided = "" if decision is None else (
        f"{'Accepted' if decision.type == 'handover.accepted' else 'Rejected'}"
        f"{' by ' + str(decision.data.get('rep')) if decision.data.get('rep') else ''}"
        f"{': ' + str(decision.data.get('reason')) if decision.data.get('reason') else ''}. The lead's care model "
        "moves on.")
    return {"handover": handover, "lead": lead, "score": explain(db, db.snapshot(lead.id), time.time()),
            "timeline": journey_timeline(db, sales, lead.id)[-25:], "manage": manages(request, handover),
            "team": [r for r in reps if r.team == handover.team and r.active and r.id != handover.rep_id],
            "decided": decided, "error": ""}


def journey_timeline(db: Any, sales: SalesStore, lead_id: str) -> list[tuple[float, str, str]]:
    """Steps taken (by the names the marketer gave them), events received and stage changes, in time order."""
    names: dict[tuple[str, int], dict[str, str]] = {}
    for key in {(s.care_model, s.version) for s in db.journey(lead_id=lead_id)}:
        version = db.version(*key)
        names[key] = editing.labels(version.document) if version else {}
    rows = [(s.at, f"{s.care_model} · {names[(s.care_model, s.version)].get(s.step, s.step)}", s.outcome)
            for s in db.journey(lead_id=lead_id)]
    rows += [(e.at, "event", e.type) for e in db.timeline(lead_id)]
    rows += [(c.at, "stage", f"{c.from_stage} → {c.to_stage} ({c.reason})") for c in sales.stage_history(lead_id)]
    return sorted(rows, key=lambda r: r[0])


# --- the link in a rep's handover email -------------------------------------------------------------------------


def _rep_link(request: Request, token: str) -> dict[str, Any]:
    try:
        return links.read(settings(request).secret(), "rep", token)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/inbox/link/{token}", response_class=HTMLResponse,
            dependencies=[public("the signed one-time link in a rep's handover email")])
def rep_link_page(request: Request, token: str) -> Response:
    """A button, not a sign-in on GET: mail scanners open links, and would use up a single-use one."""
    _rep_link(request, token)
    return TEMPLATES.TemplateResponse(request, "account/continue.html", {"action": f"/inbox/link/{token}"})


@router.post("/inbox/link/{token}",
             dependencies=[public("the signed one-time link in a rep's handover email", same_site_posts=True)])
def rep_link(request: Request, token: str) -> Response:
    data = _rep_link(request, token)
    user = accounts(request).by_rep(str(data.get("r", "")))
    if user is None:
        raise HTTPException(403, "there is no Nurture account for this rep yet; ask an admin to add one")
    if not accounts(request).use_once(data["jti"]):
        raise HTTPException(400, "this handover link was used already: sign in to open your inbox")
    response = RedirectResponse("/inbox", status_code=303)
    sign_in(request, response, user)
    return response
