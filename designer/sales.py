"""Sales: the rep's inbox, handover decisions, reps, the scoring model and each lead's score explanation."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from connectors.base import InboundRejected
from designer.deps import connectors, send_event, store
from designer.templating import TEMPLATES
from engine.scoring import ScoringModel
from store.scores import explain
from store.store import SalesStore
from store.tables import Handover, Rep

router = APIRouter()


class Decision(BaseModel):
    decision: Literal["accept", "reject"]
    reason: str = Field(default="", max_length=500)
    rep: str = ""


class RepIn(BaseModel):
    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    team: str = Field(min_length=1)
    territories: list[str] = []
    manager: bool = False
    active: bool = True


def _handover(request: Request, key: str) -> Handover:
    row = SalesStore(store(request)).handover(key)
    if row is None:
        raise HTTPException(404, f"no handover '{key}'")
    return row


async def _decide(request: Request, key: str, decision: Decision) -> tuple[Handover, list[str]]:
    row = _handover(request, key)
    if row.status != "open":
        raise HTTPException(409, f"handover already {row.status}")
    if decision.decision == "reject" and not decision.reason.strip():
        raise HTTPException(422, "a rejection needs a reason, so marketing knows what to change")
    kind = "handover.accepted" if decision.decision == "accept" else "handover.rejected"
    sent = await send_event(request, row.lead_id, kind, {"handover": key, "reason": decision.reason,
                                                         "rep": decision.rep or row.rep_id}, event_id=f"{key}/decision")
    return row, sent.pending


@router.post("/api/handovers/{key:path}/decision")
async def decide(request: Request, key: str, decision: Decision) -> JSONResponse:
    """200 when the run has the decision; 202 when Temporal is out of reach and it will get it on retry."""
    row, pending = await _decide(request, key, decision)
    return JSONResponse({"handover": key, "lead_id": row.lead_id, "decision": decision.decision, "pending": pending},
                        status_code=202 if pending else 200)


@router.post("/inbox/{key:path}/decision", include_in_schema=False)
async def decide_form(request: Request, key: str, decision: Annotated[str, Form()],
                      reason: Annotated[str, Form()] = "", rep: Annotated[str, Form()] = "") -> Response:
    try:
        parsed = Decision.model_validate({"decision": decision, "reason": reason, "rep": rep})
        await _decide(request, key, parsed)
    except ValidationError as exc:
        return _inbox(request, rep, error=exc.errors()[0]["msg"])
    except HTTPException as exc:  # shown on the page the rep is looking at, not as bare JSON
        return _inbox(request, rep, error=str(exc.detail), status=exc.status_code)
    return RedirectResponse(f"/inbox?rep={rep}&done={parsed.decision}", status_code=303)


@router.get("/inbox", response_class=HTMLResponse, include_in_schema=False)
def inbox(request: Request, rep: str = "", done: str = "") -> Response:
    return _inbox(request, rep, done)


def _inbox(request: Request, rep: str, done: str = "", error: str = "", status: int = 422) -> Response:
    db, sales = store(request), SalesStore(store(request))
    reps = sales.reps()
    me = next((r for r in reps if r.id == rep), None)
    items = []
    for handover in db.handovers("open"):
        if me is not None and handover.rep_id != me.id and not (me.manager and handover.team == me.team):
            continue
        lead = db.get_lead(handover.lead_id)
        if lead is None:
            continue
        items.append({
            "handover": handover, "lead": lead, "score": explain(db, db.snapshot(lead.id), time.time()),
            "timeline": journey_timeline(db, sales, lead.id)[-25:],
        })
    return TEMPLATES.TemplateResponse(request, "inbox.html", {"reps": reps, "me": me, "items": items, "done": done,
                                                              "error": error, "now": time.time()},
                                      status_code=status if error else 200)


def journey_timeline(db: Any, sales: SalesStore, lead_id: str) -> list[tuple[float, str, str]]:
    """Steps taken, events received and stage changes, as one story in time order."""
    rows = [(s.at, f"{s.care_model} · {s.step}", s.outcome) for s in db.journey(lead_id=lead_id)]
    rows += [(e.at, "event", e.type) for e in db.timeline(lead_id)]
    rows += [(c.at, "stage", f"{c.from_stage} → {c.to_stage} ({c.reason})") for c in sales.stage_history(lead_id)]
    return sorted(rows, key=lambda r: r[0])


@router.get("/api/reps")
def list_reps(request: Request) -> list[dict[str, Any]]:
    return [r.model_dump() for r in SalesStore(store(request)).reps()]


@router.put("/api/reps/{rep_id}")
def put_rep(request: Request, rep_id: str, rep: RepIn) -> dict[str, Any]:
    return SalesStore(store(request)).put_rep(Rep(id=rep_id, **rep.model_dump())).model_dump()


@router.post("/api/scoring-model", status_code=201)
def publish_scoring(request: Request, document: Annotated[dict[str, Any], Body()]) -> Any:
    try:
        model = ScoringModel.model_validate(document)
    except ValidationError as exc:
        return JSONResponse({"problems": [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                                          for e in exc.errors()]}, status_code=422)
    row = SalesStore(store(request)).publish_scoring(model.model_dump(mode="json"))
    return {"version": row.version}


@router.get("/api/leads/{lead_id}/score")
def lead_score(request: Request, lead_id: str) -> dict[str, Any]:
    db = store(request)
    if db.get_lead(lead_id) is None:
        raise HTTPException(404, f"lead '{lead_id}' does not exist")
    return explain(db, db.snapshot(lead_id), time.time())


@router.get("/api/leads/{lead_id}/stages")
def lead_stages(request: Request, lead_id: str) -> list[dict[str, Any]]:
    return [c.model_dump() for c in SalesStore(store(request)).stage_history(lead_id)]


@router.post("/api/inbound/{channel}")
async def inbound(request: Request, channel: str) -> JSONResponse:
    connector = connectors(request).get(channel)
    if connector is None:
        raise HTTPException(404, f"no channel '{channel}'")
    try:
        events = connector.verify_inbound(dict(request.headers), await request.body())
    except InboundRejected as exc:
        raise HTTPException(401, str(exc)) from None
    results = [await send_event(request, e.lead_id, e.type, e.data, event_id=e.id) for e in events]
    pending = sum(len(r.pending) for r in results)
    return JSONResponse({"accepted": len(events), "new": sum(r.new for r in results), "pending": pending},
                        status_code=202 if pending else 200)
