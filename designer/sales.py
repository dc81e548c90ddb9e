"""The sales inbox: a rep's open handovers with each lead's score and journey, and the accept / reject form."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from designer.deps import store
from designer.sales_api import Decision, decide_handover
from designer.templating import TEMPLATES
from store.sales import SalesStore
from store.scores import explain

router = APIRouter()


@router.post("/inbox/{key:path}/decision", include_in_schema=False)
async def decide_form(request: Request, key: str, decision: Annotated[str, Form()],
                      reason: Annotated[str, Form()] = "", rep: Annotated[str, Form()] = "") -> Response:
    try:
        parsed = Decision.model_validate({"decision": decision, "reason": reason, "rep": rep})
        await decide_handover(request, key, parsed)
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


