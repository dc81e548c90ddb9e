"""Privacy requests: everything Nurture holds on a lead as one JSON document, and erasing a lead."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from designer.auth import actor, allow
from designer.deps import audit, store, temporal
from store.privacy import export, pseudonym
from workflows.client import erase_lead

router = APIRouter()


def _export(request: Request, lead_id: str) -> dict[str, Any]:
    found = export(store(request), lead_id)
    if found is None:
        raise HTTPException(404, f"lead '{lead_id}' does not exist")
    audit(request).add(actor(request), "privacy.exported", f"lead:{lead_id}")
    return found


async def _erase(request: Request, lead_id: str) -> dict[str, int]:
    if store(request).get_lead(lead_id) is None:
        raise HTTPException(404, f"lead '{lead_id}' does not exist")
    counts = await erase_lead(await temporal(request), store(request), lead_id)
    # The log names the pseudonym: the lead's id may itself be personal data.
    audit(request).add(actor(request), "privacy.erased", f"lead:{pseudonym(lead_id)}", **counts)
    return counts


@router.get("/api/leads/{lead_id}/export", dependencies=[allow("privacy")], tags=["privacy"])
def export_api(request: Request, lead_id: str) -> dict[str, Any]:
    """Profile, events, journey, scores, stage changes, deliveries, handovers and CRM records of one lead."""
    return _export(request, lead_id)


@router.delete("/api/leads/{lead_id}", dependencies=[allow("privacy")], tags=["privacy"],
               responses={503: {"description": "Temporal is out of reach: nothing was erased, retry"}})
async def erase_api(request: Request, lead_id: str) -> dict[str, Any]:
    """Ends the lead's runs, deletes its personal data, redacts its journey, and keeps a hashed suppression entry so
    that its address is never emailed again, even if imported anew."""
    return {"erased": True, "pseudonym": pseudonym(lead_id), "rows": await _erase(request, lead_id)}


@router.get("/leads/{lead_id}/export.json", include_in_schema=False, dependencies=[allow("privacy")])
def export_download(request: Request, lead_id: str) -> Response:
    return JSONResponse(_export(request, lead_id),
                        headers={"content-disposition": f'attachment; filename="lead-{pseudonym(lead_id)}.json"'})


@router.post("/leads/{lead_id}/erase", include_in_schema=False, dependencies=[allow("privacy")])
async def erase_form(request: Request, lead_id: str, confirm: Annotated[str, Form()] = "") -> Response:
    if confirm != lead_id:
        raise HTTPException(422, f"type the lead's id ({lead_id}) to confirm: erasing cannot be undone")
    await _erase(request, lead_id)
    return RedirectResponse(f"/leads?erased={pseudonym(lead_id)}", status_code=303)
