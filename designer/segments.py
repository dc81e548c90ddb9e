"""Segments: saved conditions over leads with a live count and sample, edited with the condition builder, and
enrolled into a care model in bulk with progress. Thin: the work is in workflows.segments and store.segments."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from designer import structured
from designer.auth import actor, allow
from designer.deps import audit, invalid_input, known_events, same_id, settings, temporal_or_none
from designer.deps import store as store_of
from designer.templating import TEMPLATES
from engine.lifecycle import STAGES
from engine.segments import SegmentIn, compile_segment
from store.segments import Segments
from store.tables import BulkEnrolment, Segment
from workflows.segments import SegmentProblems, run_enrolment, save_segment, start_enrolment

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api")
READ, WRITE, ENROL = allow("leads:read"), allow("website"), allow("leads:write")
SAMPLE = 10
STARTER = {"type": "score", "score": "total", "op": "gte", "value": 50}


def _segment(request: Request, segment_id: str) -> Segment:
    found = Segments(store_of(request)).get(segment_id)
    if found is None:
        raise HTTPException(404, f"there is no segment '{segment_id}'")
    return found


def _save(request: Request, given: SegmentIn) -> dict[str, Any]:
    """Raises SegmentProblems, naming where the condition is wrong."""
    row, changes = save_segment(store_of(request), given, actor(request), time.time())
    audit(request).add(actor(request), "segment.saved", f"segment:{row.id}", condition=row.condition)
    return {"joined": len(changes.joined), "left": len(changes.left)}


def _live(request: Request, compiled: dict[str, Any]) -> tuple[int, list[Any]]:
    """How many leads match now, and the first few: counted as the marketer edits, before anything is saved."""
    count, sample = 0, list[Any]()
    for lead in Segments(store_of(request)).matching(compiled, time.time()):
        count += 1
        if len(sample) < SAMPLE:
            sample.append(lead)
    return count, sample


def _start(request: Request, segment: Segment, care_model: str) -> BulkEnrolment:
    """Raises ValueError when the care model cannot take leads."""
    job = start_enrolment(store_of(request), segment, care_model, actor(request))
    audit(request).add(actor(request), "segment.enrolled", f"segment:{segment.id}", care_model=care_model,
                       leads=job.total, job=job.id)
    return _resume(request, job)


def _resume(request: Request, job: BulkEnrolment) -> BulkEnrolment:
    async def run() -> None:
        await run_enrolment(await temporal_or_none(request), store_of(request), job,
                            settings(request).bulk_per_second, settings(request).task_queue)

    running = _running(request)
    if job.id not in running:
        task = running[job.id] = asyncio.get_running_loop().create_task(run())  # held: not dropped half-way
        task.add_done_callback(lambda _: running.pop(job.id, None))
    return job


def _running(request: Request) -> dict[str, asyncio.Task[None]]:
    """The bulk enrolments this process is running; an unfinished one not here stopped with its process."""
    return request.app.state.__dict__.setdefault("bulk_jobs", {})


def _job(request: Request, segment_id: str, job_id: str) -> BulkEnrolment:
    job = Segments(store_of(request)).job(job_id)
    if job is None or job.segment != segment_id:
        raise HTTPException(404, f"segment '{segment_id}' has no bulk enrolment '{job_id}'")
    return job


# --- API ------------------------------------------------------------------------------------------------


class EnrolSegmentIn(BaseModel):
    care_model: str = Field(min_length=1)


@api.get("/segments", dependencies=[READ])
def list_segments(request: Request) -> list[dict[str, Any]]:
    segments = Segments(store_of(request))
    return [s.model_dump(exclude={"compiled"}) | {"count": segments.count(s.id)} for s in segments.all()]


@api.put("/segments/{segment_id}", dependencies=[WRITE])
def put_segment(request: Request, segment_id: str, given: SegmentIn) -> dict[str, Any]:
    """Creates or changes a segment; membership is brought up to date at once (those who match from now on join,
    and later changes to a lead raise `segment.joined` / `segment.left` on its timeline)."""
    same_id(given.id, segment_id)
    try:
        changed = _save(request, given)
    except SegmentProblems as exc:
        raise invalid_input("body", str(exc), given.condition, "condition") from None
    return get_segment(request, segment_id) | changed


@api.get("/segments/{segment_id}", dependencies=[READ])
def get_segment(request: Request, segment_id: str) -> dict[str, Any]:
    segment = _segment(request, segment_id)
    segments = Segments(store_of(request))
    return segment.model_dump(exclude={"compiled"}) | {"count": segments.count(segment_id),
                                                        "sample": segments.member_ids(segment_id, limit=SAMPLE)}


@api.post("/segments/{segment_id}/enrolments", status_code=202, dependencies=[ENROL])
async def enrol_segment(request: Request, segment_id: str, body: EnrolSegmentIn) -> dict[str, Any]:
    """Enrols every member in the care model, at the configured rate; follow it at the job's URL."""
    try:
        job = _start(request, _segment(request, segment_id), body.care_model)
    except ValueError as exc:
        raise invalid_input("body", str(exc), body.care_model, "care_model") from None
    return job.model_dump() | {"url": f"/api/segments/{segment_id}/enrolments/{job.id}"}


@api.get("/segments/{segment_id}/enrolments/{job_id}", dependencies=[READ])
def enrolment_progress(request: Request, segment_id: str, job_id: str) -> dict[str, Any]:
    job = _job(request, segment_id, job_id)
    return job.model_dump() | {"stopped": job.finished_at is None and job.id not in _running(request)}


@api.post("/segments/{segment_id}/enrolments/{job_id}/resume", status_code=202, dependencies=[ENROL])
async def resume_enrolment(request: Request, segment_id: str, job_id: str) -> dict[str, Any]:
    """Goes on after the last lead handed over; leads enrolled already are not enrolled twice."""
    job = _job(request, segment_id, job_id)
    if job.finished_at is None:
        _resume(request, job)
    return job.model_dump()


# --- pages ----------------------------------------------------------------------------------------------


def _choices(request: Request) -> dict[str, list[str]]:
    return {"attributes": store_of(request).attribute_names(), "events": sorted(known_events(request)),
            "stages": list(STAGES), "scores": ["total", "fit", "engagement"]}


def _editor(request: Request, segment: Segment, condition: dict[str, Any], errors: list[str],
            saved: bool = False) -> dict[str, Any]:
    compiled, problems = compile_segment(condition)
    count, sample = _live(request, compiled) if compiled is not None else (0, [])
    return {"segment": segment, "condition": condition, "errors": errors or problems, "count": count,
            "sample": sample, "choices": _choices(request), "saved": saved, "members": Segments(
                store_of(request)).count(segment.id), "jobs": Segments(store_of(request)).jobs(segment.id),
            "care_models": [v.care_model for v in store_of(request).latest_versions()], "running": _running(request)}


@router.get("/segments", response_class=HTMLResponse, dependencies=[READ])
def segments_page(request: Request) -> Response:
    segments = Segments(store_of(request))
    rows = [(s, segments.count(s.id)) for s in segments.all()]
    return TEMPLATES.TemplateResponse(request, "segments/index.html", {"segments": rows})


@router.post("/segments", dependencies=[WRITE])
def new_segment(request: Request, id: Annotated[str, Form()], name: Annotated[str, Form()]) -> Response:
    if Segments(store_of(request)).get(id.strip()) is not None:
        raise HTTPException(422, f"a segment with id '{id.strip()}' exists already")
    try:
        given = SegmentIn(id=id.strip(), name=name.strip() or id.strip(), condition=STARTER)
    except ValidationError as exc:
        raise HTTPException(422, f"{exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    _save(request, given)  # the starter condition is valid
    return RedirectResponse(f"/segments/{given.id}", status_code=303)


@router.get("/segments/{segment_id}", response_class=HTMLResponse, dependencies=[READ])
def segment_page(request: Request, segment_id: str) -> Response:
    segment = _segment(request, segment_id)
    return TEMPLATES.TemplateResponse(request, "segments/segment.html",
                                      _editor(request, segment, segment.condition, []))


@router.post("/segments/{segment_id}", response_class=HTMLResponse, dependencies=[WRITE])
async def edit_segment(request: Request, segment_id: str) -> Response:
    """The builder's every change: counted live; stored only when Save is pressed."""
    segment = _segment(request, segment_id)
    pairs = [(k, str(v)) for k, v in (await request.form()).multi_items()]
    form = dict(pairs)
    data = {"condition": structured.read_condition(structured.unflatten(pairs, "condition"), segment.condition)}
    if form.get("action"):
        data = structured.apply(data, form["action"])
    condition, name = data["condition"], form.get("name", "").strip() or segment.name
    saved, errors = False, []
    if form.get("save"):
        try:
            _save(request, SegmentIn(id=segment.id, name=name, condition=condition))
            segment, saved = _segment(request, segment_id), True
        except SegmentProblems as exc:
            errors = exc.problems
    context = _editor(request, segment, condition, errors, saved) | {"name": name}
    return TEMPLATES.TemplateResponse(request, "segments/segment.html", context, block_names=["editor"],
                                      status_code=422 if context["errors"] else 200)


@router.post("/segments/{segment_id}/enrol", response_class=HTMLResponse, dependencies=[ENROL])
async def enrol_page(request: Request, segment_id: str, care_model: Annotated[str, Form()]) -> Response:
    try:
        job = _start(request, _segment(request, segment_id), care_model)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return TEMPLATES.TemplateResponse(request, "segments/segment.html",
                                      {"job": job, "running": _running(request)}, block_names=["job"])


@router.get("/segments/{segment_id}/jobs/{job_id}", response_class=HTMLResponse, dependencies=[READ])
def job_progress(request: Request, segment_id: str, job_id: str) -> Response:
    job = _job(request, segment_id, job_id)
    return TEMPLATES.TemplateResponse(request, "segments/segment.html",
                                      {"job": job, "running": _running(request)}, block_names=["job"])


@router.post("/segments/{segment_id}/jobs/{job_id}/resume", response_class=HTMLResponse, dependencies=[ENROL])
async def resume_page(request: Request, segment_id: str, job_id: str) -> Response:
    job = _resume(request, _job(request, segment_id, job_id))
    return TEMPLATES.TemplateResponse(request, "segments/segment.html",
                                      {"job": job, "running": _running(request)}, block_names=["job"])
