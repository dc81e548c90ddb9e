"""The JSON API for integrators: care models, leads, enrolments, events, where a lead is and its journey."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from temporalio.service import RPCError

from designer.auth import actor, allow
from designer.deps import audit, known_events, send_event, settings, temporal, temporal_or_none
from designer.deps import store as store_of
from engine.advice import advice
from engine.changes import diff_lines
from engine.document import json_schema
from engine.lead import LeadIn
from engine.validator import check
from store.deliveries import Deliveries
from store.tables import Lead
from workflows.client import where
from workflows.ingest import deliver_pending, enrol_row

router = APIRouter(prefix="/api")


class EventIn(BaseModel):
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, description="dedupe key")
    lead_id: str = Field(min_length=1)
    type: str = Field(min_length=1, examples=["email.clicked"])
    at: float | None = Field(default=None, description="epoch seconds; defaults to now")
    data: dict[str, Any] = {}


class EnrolIn(BaseModel):
    lead_id: str = Field(min_length=1)


class Accepted(BaseModel):
    """What became of an event: 200 when Temporal took every delivery, 202 when some wait in `pending`."""

    new: bool = Field(description="false when this event id was accepted before")
    signalled: list[str] = Field(description="running care models told of the event now")
    enrolled: list[str] = Field(description="care models the event started (entry rules, stage thresholds)")
    staged: list[str] = Field(description="lifecycle stages the lead moved to")
    pending: list[str] = Field(description="deliveries Temporal has not taken yet; retried until it does")


def _accepted(result: Any) -> JSONResponse:
    return JSONResponse(asdict(result), status_code=202 if result.pending else 200)


@router.get("/schema", dependencies=[allow("care-models:read")])
def schema() -> dict[str, Any]:
    return json_schema()


@router.post("/validate", dependencies=[allow("care-models:read")])
def validate(request: Request, document: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """`problems` block publishing; `warnings` point at what may not do what you mean (they never block)."""
    doc, problems = check(document)
    warnings = advice(doc, known_events(request)) if doc is not None else []
    return {"valid": not problems, "problems": [p.to_dict() for p in problems],
            "warnings": [w.to_dict() for w in warnings]}


@router.post("/care-models", status_code=201, dependencies=[allow("care-models:publish")])
def publish(request: Request, document: Annotated[dict[str, Any], Body()]) -> Any:
    if settings(request).publish_approval:
        raise HTTPException(409, "this installation publishes only approved drafts: save the draft in the designer, "
                                 "ask to publish, and a publisher approves it")
    doc, problems = check(document)
    if doc is None or problems:
        return JSONResponse({"problems": [p.to_dict() for p in problems]}, status_code=422)
    try:
        row = store_of(request).publish(doc)
    except ValueError as exc:  # graph checks that need the other published models
        return JSONResponse({"problems": [p.to_dict() for p in getattr(exc, "problems", [])]}, status_code=422)
    before = store_of(request).version(row.care_model, row.version - 1)
    audit(request).add(actor(request), "care-model.published", f"care-model:{row.care_model}", version=row.version,
                       diff=diff_lines(before.document if before else None, row.document))
    return {"care_model": row.care_model, "version": row.version, "hash": row.hash,
            "warnings": [w.to_dict() for w in advice(doc, known_events(request))]}


@router.get("/care-models", dependencies=[allow("care-models:read")])
def list_models(request: Request) -> list[dict[str, Any]]:
    return [{"care_model": r.care_model, "name": r.name, "version": r.version, "hash": r.hash}
            for r in store_of(request).latest_versions()]


@router.get("/care-models/{care_model}", dependencies=[allow("care-models:read")])
def get_model(request: Request, care_model: str) -> dict[str, Any]:
    row = store_of(request).latest(care_model)
    if row is None:
        raise HTTPException(404, f"care model '{care_model}' is not published")
    return row.model_dump(mode="json")


class ResubscribeIn(BaseModel):
    reason: str = Field(min_length=3, max_length=500, description="why the lead may be emailed again (kept)")


@router.put("/leads/{lead_id}", dependencies=[allow("leads:write")])
async def put_lead(request: Request, lead_id: str, lead: LeadIn) -> dict[str, Any]:
    """Creates the lead, or changes only the fields the body gives (attributes are merged key by key), so a CRM
    re-sync never undoes an unsubscribe, a stage or scores it did not mention. Changes reach the lead's runs."""
    if lead.id != lead_id:  # shaped as any other validation error, as the schema declares 422
        raise RequestValidationError([{"type": "value_error", "loc": ("body", "id"), "input": lead.id,
                                       "msg": f"body id '{lead.id}' does not match the URL's '{lead_id}'"}])
    store = store_of(request)
    known = store.get_lead(lead_id)
    if known is None:
        return store.upsert_lead(lead.to_state(), lead.unsubscribed).model_dump(mode="json")
    given = _changed(known, lead.model_dump(include=lead.model_fields_set - {"id", "unsubscribed"}))
    if "unsubscribed" in lead.model_fields_set and lead.unsubscribed != known.unsubscribed:
        if not lead.unsubscribed:
            raise HTTPException(409, f"lead '{lead_id}' has unsubscribed; re-subscribing is an explicit act: "
                                     f"POST /api/leads/{lead_id}/resubscribe with a reason")
        await send_event(request, lead_id, "lead.unsubscribed", {"source": "api"})
    if given:
        await send_event(request, lead_id, "lead.updated", given | {"why": "set by PUT /api/leads"})
    return (store.get_lead(lead_id) or known).model_dump(mode="json")


def _changed(known: Lead, given: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from the stored lead: an hourly CRM re-sync of the same values adds nothing to the
    timeline and tells no run anything."""
    changed = {k: v for k, v in given.items() if k != "attributes" and getattr(known, k) != v}
    attributes = {k: v for k, v in (given.get("attributes") or {}).items() if known.attributes.get(k) != v}
    return changed | ({"attributes": attributes} if attributes else {})


@router.post("/leads/{lead_id}/resubscribe", dependencies=[allow("leads:write")])
async def resubscribe(request: Request, lead_id: str, body: ResubscribeIn) -> dict[str, Any]:
    """The one way back after an unsubscribe: recorded on the lead's timeline with its reason."""
    store = store_of(request)
    known = store.get_lead(lead_id)
    if known is None:
        raise HTTPException(404, f"lead '{lead_id}' does not exist")
    await send_event(request, lead_id, "lead.resubscribed", {"reason": body.reason})
    return (store.get_lead(lead_id) or known).model_dump(mode="json")


@router.post("/care-models/{care_model}/enrolments", dependencies=[allow("leads:write")],
             responses={202: {"description": "Temporal is out of reach: the enrolment is queued and retried"}})
async def enrol_lead(request: Request, care_model: str, body: EnrolIn) -> JSONResponse:
    store = store_of(request)
    if store.latest(care_model) is None:
        raise HTTPException(404, f"care model '{care_model}' is not published")
    if care_model in store.archived():
        raise HTTPException(409, f"care model '{care_model}' is archived: restore it in the designer to enrol leads")
    if store.get_lead(body.lead_id) is None:
        raise HTTPException(404, f"lead '{body.lead_id}' does not exist; PUT /api/leads/{body.lead_id} first")
    row = enrol_row(f"api/{uuid.uuid4()}", body.lead_id, care_model, None, time.time())
    Deliveries(store).add([row])
    await deliver_pending(await temporal_or_none(request), store, body.lead_id, settings(request).task_queue)
    [done] = Deliveries(store).by_key(row.key)
    if done.status == "pending":
        return JSONResponse({"status": "pending", "workflow_id": row.workflow_id,
                             "reason": "Temporal is out of reach; the enrolment will be retried until it starts"},
                            status_code=202)
    status, _, reason = done.outcome.partition(" ")
    return JSONResponse({"status": status, "workflow_id": row.workflow_id, "reason": reason})


@router.post("/events", response_model=Accepted, dependencies=[allow("events:write")],
             responses={202: {"model": Accepted, "description": "accepted; some deliveries are still pending"},
                        503: {"description": "the database is out of reach: nothing was accepted, retry"}})
async def post_event(request: Request, event: EventIn) -> JSONResponse:
    return _accepted(await send_event(request, event.lead_id, event.type, event.data, event.id, event.at))


@router.get("/leads/{lead_id}/where", dependencies=[allow("leads:read")])
async def lead_where(request: Request, lead_id: str) -> list[dict[str, Any]]:
    client = await temporal(request)
    out = []
    for enrolment in store_of(request).enrolments(lead_id=lead_id, running=True):
        with contextlib.suppress(RPCError):  # the run ended between our read and the query
            out.append(asdict(await where(client, enrolment.care_model, lead_id)))
    return out


@router.get("/leads/{lead_id}/journey", dependencies=[allow("leads:read")])
def journey(request: Request, lead_id: str) -> dict[str, Any]:
    store = store_of(request)
    if store.get_lead(lead_id) is None:
        raise HTTPException(404, f"lead '{lead_id}' does not exist")
    return {
        "steps": [r.model_dump(mode="json") for r in store.journey(lead_id=lead_id)],
        "events": [r.model_dump(mode="json") for r in store.timeline(lead_id)],
        "deliveries": [r.model_dump(mode="json") for r in store.outbox(lead_id)],
    }
