"""The sales side of the JSON API: handover decisions, reps, the scoring model, a lead's score and stages, and
signed inbound requests from connectors."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from connectors.base import InboundRejected
from designer.auth import actor, allow, principal, public
from designer.deps import audit, connectors, send_event, store
from engine.scoring import ScoringModel
from store.sales import SalesStore
from store.scores import explain
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


async def decide_handover(request: Request, key: str, decision: Decision) -> tuple[Handover, list[str]]:
    row = _handover(request, key)
    if row.status != "open":
        raise HTTPException(409, f"handover already {row.status}")
    if decision.decision == "reject" and not decision.reason.strip():
        raise HTTPException(422, "a rejection needs a reason, so marketing knows what to change")
    kind = "handover.accepted" if decision.decision == "accept" else "handover.rejected"
    sent = await send_event(request, row.lead_id, kind, {"handover": key, "reason": decision.reason,
                                                         "rep": decision.rep or row.rep_id}, event_id=f"{key}/decision")
    return row, sent.pending


@router.post("/api/handovers/{key:path}/decision", dependencies=[allow("handovers:own")])
async def decide(request: Request, key: str, decision: Decision) -> JSONResponse:
    """200 when the run has the decision; 202 when Temporal is out of reach and it will get it on retry."""
    may_decide(request, _handover(request, key))
    row, pending = await decide_handover(request, key, decision)
    return JSONResponse({"handover": key, "lead_id": row.lead_id, "decision": decision.decision, "pending": pending},
                        status_code=202 if pending else 200)


def manages(request: Request, handover: Handover) -> bool:
    who = principal(request)
    return who.may("admin") or (who.may("handovers:team")
                                and handover.team in SalesStore(store(request)).teams_of(who.rep_id))


def may_see(request: Request, handover: Handover) -> bool:
    """A rep sees their own handovers, a manager their team's, an admin or an integration's token any."""
    who = principal(request)
    return who.user is None or handover.rep_id == who.rep_id != "" or manages(request, handover)


def may_decide(request: Request, handover: Handover) -> None:
    if not may_see(request, handover):
        raise HTTPException(403, f"handover '{handover.key}' is not routed to you")


def lead_visible(request: Request, lead_id: str) -> bool:
    """Everyone who may read leads sees them all; sales people only those handed to them or their team."""
    return principal(request).may("leads:read") or any(
        may_see(request, h) for h in SalesStore(store(request)).handovers_of(lead_id))


@router.get("/api/reps", dependencies=[allow("sales:write", "handovers:team")])
def list_reps(request: Request) -> list[dict[str, Any]]:
    return [r.model_dump() for r in SalesStore(store(request)).reps()]


@router.put("/api/reps/{rep_id}", dependencies=[allow("sales:write")])
def put_rep(request: Request, rep_id: str, rep: RepIn) -> dict[str, Any]:
    sales = SalesStore(store(request))
    row = sales.put_rep(Rep(id=rep_id, **rep.model_dump()))
    audit(request).add(actor(request), "rep.saved", f"rep:{rep_id}", **rep.model_dump())
    assigned = sales.assign_waiting(row.team) if row.active else []
    return row.model_dump() | {"assigned": [h.key for h in assigned]}


@router.post("/api/scoring-model", status_code=201, dependencies=[allow("sales:write")])
def publish_scoring(request: Request, document: Annotated[dict[str, Any], Body()]) -> Any:
    try:
        model = ScoringModel.model_validate(document)
    except ValidationError as exc:
        return JSONResponse({"problems": [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                                          for e in exc.errors()]}, status_code=422)
    row = SalesStore(store(request)).publish_scoring(model.model_dump(mode="json"))
    audit(request).add(actor(request), "scoring-model.published", "scoring-model", version=row.version)
    return {"version": row.version}


@router.get("/api/leads/{lead_id}/score", dependencies=[allow("leads:read", "handovers:own")])
def lead_score(request: Request, lead_id: str) -> dict[str, Any]:
    db = store(request)
    if db.get_lead(lead_id) is None or not lead_visible(request, lead_id):
        raise HTTPException(404, f"lead '{lead_id}' does not exist")
    return explain(db, db.snapshot(lead_id), time.time())


@router.get("/api/leads/{lead_id}/stages", dependencies=[allow("leads:read")])
def lead_stages(request: Request, lead_id: str) -> list[dict[str, Any]]:
    return [c.model_dump() for c in SalesStore(store(request)).stage_history(lead_id)]


@router.post("/api/inbound/{channel}", dependencies=[public("signed: each connector checks its own signature")])
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
