"""The JSON API for integrators: care models, leads, enrolments, events, where a lead is and its journey."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError
from temporalio.service import RPCError

from designer.auth import actor, allow
from designer.deps import (
    audit,
    invalid_input,
    known_events,
    same_id,
    send_event,
    send_events,
    settings,
    temporal,
    temporal_or_none,
)
from designer.deps import store as store_of
from engine.advice import advice
from engine.changes import diff_lines
from engine.document import json_schema
from engine.lead import LeadEvent, LeadIn
from engine.validator import check
from store.deliveries import Deliveries
from store.tables import Lead
from workflows.client import where
from workflows.imports import ImportReport, import_leads
from workflows.ingest import deliver_pending, enrol_row
from workflows.leads import ResubscribeRefused, upsert
from workflows.merges import merge_leads

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
    same_id(lead.id, lead_id)
    _, row = await _upsert(request, lead)
    return row.model_dump(mode="json")


@router.get("/leads/{lead_id}", dependencies=[allow("leads:read")])
def get_lead(request: Request, lead_id: str) -> dict[str, Any]:
    found = store_of(request).get_lead(lead_id)
    if found is None:
        raise HTTPException(404, f"lead '{lead_id}' does not exist")
    return found.model_dump(mode="json")


async def _upsert(request: Request, lead: LeadIn) -> tuple[str, Lead]:
    try:
        return await upsert(await temporal_or_none(request), store_of(request), lead, str(uuid.uuid4()),
                            time.time(), settings(request).task_queue)
    except ResubscribeRefused as exc:
        raise HTTPException(409, str(exc)) from None


BATCH_MAX = 1000


class ItemResult(BaseModel):
    """What became of one item of a batch; the others are unaffected by it."""
    index: int = Field(description="the item's position in the request, from 0")
    id: str | None = Field(description="the item's id, when it had one")
    status: str = Field(description="events: accepted | pending | duplicate | rejected; "
                                    "leads: created | updated | unchanged | rejected")
    error: str = Field(default="", description="why a rejected item was rejected, naming the field")
    signalled: list[str] = []
    enrolled: list[str] = []
    staged: list[str] = []
    pending: list[str] = []


class BatchResult(BaseModel):
    results: list[ItemResult]
    counts: dict[str, int] = Field(description="how many items ended in each status")


def _batch(results: list[ItemResult]) -> BatchResult:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return BatchResult(results=results, counts=counts)


def _invalid(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in exc.errors())


Batch = Annotated[list[dict[str, Any]], Body(max_length=BATCH_MAX, description=f"at most {BATCH_MAX} items")]
# One event or a list: chosen by the body's shape, so a bad single event is told only what is wrong with it.
OneOrMany = Annotated[Annotated[EventIn, Tag("one")] | Annotated[list[dict[str, Any]], Field(max_length=BATCH_MAX),
                                                                  Tag("many")],
                      Discriminator(lambda v: "many" if isinstance(v, list) else "one")]


@router.post("/leads/batch", response_model=BatchResult, dependencies=[allow("leads:write")])
async def put_leads(request: Request, items: Batch) -> BatchResult:
    """Creates or updates up to 1,000 leads as `PUT /api/leads/{id}` does each; a bad item is reported by its
    position and field and changes nothing, and the rest go ahead."""
    results = []
    for index, item in enumerate(items):
        ref = item.get("id") if isinstance(item.get("id"), str) else None
        try:
            status, _ = await _upsert(request, LeadIn.model_validate(item))
            results.append(ItemResult(index=index, id=ref, status=status))
        except ValidationError as exc:
            results.append(ItemResult(index=index, id=ref, status="rejected", error=_invalid(exc)))
        except HTTPException as exc:
            results.append(ItemResult(index=index, id=ref, status="rejected", error=str(exc.detail)))
    return _batch(results)


@router.post("/imports/leads", response_model=ImportReport, dependencies=[allow("leads:write")],
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {
                 "type": "string", "description": "a header line naming the columns (id or email at least), then "
                                                  "a lead per line; other columns become attributes"}}}}})
async def import_csv(request: Request, enrol: str | None = None) -> ImportReport:
    """Creates or updates the leads of a CSV file as PUT /api/leads does; repeating it changes nothing twice."""
    try:
        text = (await request.body()).decode("utf-8")
        report = await import_leads(await temporal_or_none(request), store_of(request), text, enrol=enrol,
                                    task_queue=settings(request).task_queue)
    except UnicodeDecodeError as exc:
        raise invalid_input("body", f"the file is not UTF-8 text (byte {exc.start})", None) from None
    except ValueError as exc:  # the care model to enrol in is not published
        raise invalid_input("query", str(exc), enrol, "enrol") from None
    audit(request).add(actor(request), "leads.imported", "leads", rows=report.rows, created=report.created,
                       updated=report.updated, problems=len(report.problems), enrol=enrol)
    return report


class MergeIn(BaseModel):
    other: str = Field(min_length=1, description="the lead found to be the same person; it becomes an alias")


@router.post("/leads/{lead_id}/merge", dependencies=[allow("leads:write")])
async def merge(request: Request, lead_id: str, body: MergeIn) -> dict[str, Any]:
    """Merges `other` into this lead: both histories kept, profiles combined (this lead's values win), the other's
    running care models carry on as this lead, or end where this lead is already in them. The other id keeps
    working as an alias."""
    try:
        merged = await merge_leads(await temporal_or_none(request), store_of(request), lead_id, body.other,
                                   actor(request), time.time(), settings(request).task_queue)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise invalid_input("body", str(exc), body.other, "other") from None
    audit(request).add(actor(request), "lead.merged", f"lead:{merged.lead.id}", merged=body.other,
                       moved_runs=merged.moved_runs, duplicate_runs=merged.duplicate_runs)
    return {"lead": merged.lead.model_dump(mode="json"), "moved_runs": merged.moved_runs,
            "duplicate_runs": merged.duplicate_runs}


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


@router.post("/events", response_model=Accepted | BatchResult, dependencies=[allow("events:write")],
             responses={202: {"model": Accepted, "description": "accepted; some deliveries are still pending"},
                        503: {"description": "the database is out of reach: nothing was accepted, retry"}})
async def post_event(request: Request, body: Annotated[OneOrMany, Body()]) -> Any:
    """One event, or a list of up to 1,000: each item is accepted or rejected on its own, in order. A batch cut
    short by a 503 can be sent again whole: items with an `id` that were taken are answered `duplicate`."""
    if isinstance(body, EventIn):
        return _accepted(await send_event(request, body.lead_id, body.type, body.data, body.id, body.at))
    results: list[ItemResult | None] = []
    valid: list[tuple[int, EventIn]] = []
    for index, item in enumerate(body):
        ref = item.get("id") if isinstance(item.get("id"), str) else None
        try:
            valid.append((index, EventIn.model_validate(item)))
            results.append(None)
        except ValidationError as exc:
            results.append(ItemResult(index=index, id=ref, status="rejected", error=_invalid(exc)))
    now = time.time()
    done = await send_events(request, [(e.lead_id, LeadEvent(e.id, e.type, e.at or now, e.data)) for _, e in valid])
    for (index, event), outcome in zip(valid, done, strict=True):
        status = "duplicate" if not outcome.new else "pending" if outcome.pending else "accepted"
        results[index] = ItemResult(index=index, id=event.id, status=status, signalled=outcome.signalled,
                                    enrolled=outcome.enrolled, staged=outcome.staged, pending=outcome.pending)
    return _batch([r for r in results if r is not None])


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
