"""The web app: a JSON API under /api (OpenAPI at /docs), the home page and /healthz."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import timedelta
from html import escape
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client
from temporalio.service import RPCError

from designer import pages, sales, tracking
from designer.deps import send_event, temporal
from designer.deps import store as store_of
from designer.templating import TEMPLATES
from engine.document import json_schema
from engine.lead import LeadIn
from engine.validator import check
from nurture.settings import Settings
from nurture.store import Store
from workflows.client import enrol, snapshot, where

# htmx is installed from the npm registry by scripts/setup, pinned in package-lock.json, and served from here.
STATIC = Path(__file__).resolve().parent.parent / "node_modules" / "htmx.org" / "dist"


class EventIn(BaseModel):
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, description="dedupe key")
    lead_id: str = Field(min_length=1)
    type: str = Field(min_length=1, examples=["email.clicked"])
    at: float | None = Field(default=None, description="epoch seconds; defaults to now")
    data: dict[str, Any] = {}


class EnrolIn(BaseModel):
    lead_id: str = Field(min_length=1)


def create_app(settings: Settings | None = None, store: Store | None = None,
               client: Client | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.store is None:
            app.state.store = Store.open(settings.db_url)
        yield

    app = FastAPI(title="Nurture", version="0.1.0", lifespan=lifespan)
    app.state.settings, app.state.store, app.state.client, app.state.connectors = settings, store, client, None
    app.include_router(tracking.router)
    app.include_router(sales.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(STATIC), check_dir=False), name="static")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """JSON for the API; for people, the message in the side panel (htmx) or on a page."""
        if request.url.path.startswith(("/api/", "/healthz")) or ("text/html" not in request.headers.get("accept", "") \
                and not request.headers.get("hx-request")):
            return await http_exception_handler(request, exc)
        if request.headers.get("hx-request") and not request.headers.get("hx-boosted"):
            message = escape(str(exc.detail))
            return HTMLResponse(f'<aside id="panel" class="panel"><p class="error">{message}</p></aside>',
                                status_code=422)  # 422 is the status htmx is set to swap in
        title = {404: "Not found", 409: "Already decided", 422: "That did not work"}.get(exc.status_code, "Error")
        return TEMPLATES.TemplateResponse(request, "error.html", {"status": exc.status_code, "title": title,
                                                                  "detail": exc.detail}, status_code=exc.status_code)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/designer")

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        report: dict[str, str] = {}
        try:
            store_of(request).ping()
            report["db"] = "ok"
        except Exception as exc:
            report["db"] = f"error: {exc}"
        try:
            await (await temporal(request)).service_client.check_health(timeout=timedelta(seconds=3))
            report["temporal"] = "ok"
        except (HTTPException, RPCError, RuntimeError) as exc:
            report["temporal"] = f"error: {getattr(exc, 'detail', exc)}"
        healthy = all(v == "ok" for v in report.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", **report}, status_code=200 if healthy else 503)

    @app.get("/api/schema")
    def schema() -> dict[str, Any]:
        return json_schema()

    @app.post("/api/validate")
    def validate(document: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        _, problems = check(document)
        return {"valid": not problems, "problems": [p.to_dict() for p in problems]}

    @app.post("/api/care-models", status_code=201)
    def publish(request: Request, document: Annotated[dict[str, Any], Body()]) -> Any:
        doc, problems = check(document)
        if doc is None or problems:
            return JSONResponse({"problems": [p.to_dict() for p in problems]}, status_code=422)
        try:
            row = store_of(request).publish(doc)
        except ValueError as exc:  # graph checks that need the other published models
            return JSONResponse({"problems": [p.to_dict() for p in getattr(exc, "problems", [])]}, status_code=422)
        return {"care_model": row.care_model, "version": row.version, "hash": row.hash}

    @app.get("/api/care-models")
    def list_models(request: Request) -> list[dict[str, Any]]:
        return [{"care_model": r.care_model, "name": r.name, "version": r.version, "hash": r.hash}
                for r in store_of(request).latest_versions()]

    @app.get("/api/care-models/{care_model}")
    def get_model(request: Request, care_model: str) -> dict[str, Any]:
        row = store_of(request).latest(care_model)
        if row is None:
            raise HTTPException(404, f"care model '{care_model}' is not published")
        return row.model_dump(mode="json")

    @app.put("/api/leads/{lead_id}")
    def put_lead(request: Request, lead_id: str, lead: LeadIn) -> dict[str, Any]:
        if lead.id != lead_id:
            raise HTTPException(422, f"body id '{lead.id}' does not match the URL's '{lead_id}'")
        return store_of(request).upsert_lead(lead.to_state(), lead.unsubscribed).model_dump(mode="json")

    @app.post("/api/care-models/{care_model}/enrolments")
    async def enrol_lead(request: Request, care_model: str, body: EnrolIn) -> dict[str, Any]:
        store = store_of(request)
        version = store.latest(care_model)
        if version is None:
            raise HTTPException(404, f"care model '{care_model}' is not published")
        if store.get_lead(body.lead_id) is None:
            raise HTTPException(404, f"lead '{body.lead_id}' does not exist; PUT /api/leads/{body.lead_id} first")
        result = await enrol(await temporal(request), store, version, snapshot(store, body.lead_id),
                             task_queue=settings.task_queue)
        return asdict(result)

    @app.post("/api/events")
    async def post_event(request: Request, event: EventIn) -> dict[str, Any]:
        return asdict(await send_event(request, event.lead_id, event.type, event.data, event.id, event.at))

    @app.get("/api/leads/{lead_id}/where")
    async def lead_where(request: Request, lead_id: str) -> list[dict[str, Any]]:
        client_ = await temporal(request)
        out = []
        for enrolment in store_of(request).enrolments(lead_id=lead_id, running=True):
            with contextlib.suppress(RPCError):
                out.append(asdict(await where(client_, enrolment.care_model, lead_id)))
        return out

    @app.get("/api/leads/{lead_id}/journey")
    def journey(request: Request, lead_id: str) -> dict[str, Any]:
        store = store_of(request)
        if store.get_lead(lead_id) is None:
            raise HTTPException(404, f"lead '{lead_id}' does not exist")
        return {
            "steps": [r.model_dump(mode="json") for r in store.journey(lead_id=lead_id)],
            "events": [r.model_dump(mode="json") for r in store.timeline(lead_id)],
            "deliveries": [r.model_dump(mode="json") for r in store.outbox(lead_id)],
        }

    return app
