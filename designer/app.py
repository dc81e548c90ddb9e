"""The web app, assembled: the JSON API under /api (OpenAPI at /docs), pages, tracking, the inbox, sign-in,
administration and /healthz. Every route carries a policy (designer.auth); tests/test_access.py checks that."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from html import escape
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client
from temporalio.service import RPCError

from designer import (
    admin,
    api,
    assets,
    imports,
    messages,
    pages,
    privacy,
    reports,
    sales,
    sales_api,
    segments,
    signin,
    tracking,
    website,
)
from designer.auth import SecurityHeaders, allow, public
from designer.deps import store as store_of
from designer.deps import temporal
from designer.templating import TEMPLATES
from nurture.settings import Settings
from store.store import Store


def create_app(settings: Settings | None = None, store: Store | None = None,
               client: Client | None = None) -> FastAPI:
    settings = settings or Settings()
    assets.check()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.store is None:
            app.state.store = Store.open(settings.db_url, settings.auto_migrate)
        yield

    app = FastAPI(title="Nurture", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings, app.state.store, app.state.client, app.state.connectors = settings, store, client, None
    for router in (api.router, website.api, segments.api, reports.api, sales_api.router, privacy.router, admin.router,
                   signin.router, tracking.router, website.router, segments.router, imports.router, reports.router,
                   sales.router, messages.router, pages.router):
        app.include_router(router)
    # htmx comes from the npm registry (pinned in package-lock.json), into the wheel or node_modules/.
    app.mount("/static/swagger", StaticFiles(directory=str(assets.SWAGGER_DIR)), name="swagger")
    app.mount("/static", StaticFiles(directory=str(assets.STATIC_DIR)), name="static")
    app.mount("/assets", StaticFiles(directory=str(assets.TEMPLATES_DIR / "assets")), name="assets")
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, database_down)  # type: ignore[arg-type]
    app.add_api_route("/", home, include_in_schema=False, dependencies=[allow()])
    for path in ("/healthz", "/readyz"):  # ready: the database and Temporal answer
        app.add_api_route(path, healthz, dependencies=[public("load balancers and monitors")])
    app.add_api_route("/livez", livez, dependencies=[public("process supervisors: is this process alive")])
    app.add_api_route("/openapi.json", lambda: app.openapi(), include_in_schema=False, dependencies=[allow()])
    app.add_api_route("/docs", docs, include_in_schema=False, dependencies=[allow()])
    return app


def home(request: Request) -> RedirectResponse:
    return RedirectResponse(signin.home_for(request))


def docs() -> HTMLResponse:
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="Nurture API",
                               swagger_js_url="/static/swagger/swagger-ui-bundle.js",
                               swagger_css_url="/static/swagger/swagger-ui.css",
                               swagger_favicon_url="/static/swagger/favicon-32x32.png")
    # Swagger UI is served from the installed packages, but starts from an inline script: allowed on this page only.
    page.headers["content-security-policy"] = (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'")
    return page


def livez() -> dict[str, str]:
    """Alive: restart the process only when this fails. Readiness (`/readyz`) may fail while a dependency is away,
    and then a load balancer sends requests elsewhere instead."""
    return {"status": "alive"}


async def healthz(request: Request) -> JSONResponse:
    report: dict[str, str] = {}
    try:
        store_of(request).ping()
        report["db"] = "ok"
    except OperationalError as exc:
        report["db"] = f"error: {exc.orig}"
    try:
        await (await temporal(request)).service_client.check_health(timeout=timedelta(seconds=3))
        report["temporal"] = "ok"
    except (HTTPException, RPCError, RuntimeError) as exc:
        report["temporal"] = f"error: {getattr(exc, 'detail', exc)}"
    healthy = all(v == "ok" for v in report.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", **report}, status_code=200 if healthy else 503)


async def database_down(request: Request, exc: OperationalError) -> Response:
    """Nothing was accepted: say so, so the caller retries instead of believing it done."""
    detail = "the database is out of reach; nothing was saved, try again shortly"
    return await http_error(request, StarletteHTTPException(503, detail))


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """JSON for the API; for people, the message in the side panel (htmx) or on a page. People who are not
    signed in go to the sign-in page, and come back after."""
    wants_html = "text/html" in request.headers.get("accept", "") or request.headers.get("hx-request")
    if request.url.path.startswith(("/api/", "/healthz")) or not wants_html:
        return await http_exception_handler(request, exc)
    if exc.status_code == 401:
        here = urlsplit(request.headers.get("hx-current-url", "")) if request.headers.get("hx-request") else request.url
        target = f"/sign-in?next={quote(here.path + (f'?{here.query}' if here.query else ''))}"
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    if request.headers.get("hx-request") and not request.headers.get("hx-boosted"):
        message = escape(str(exc.detail))
        return HTMLResponse(f'<aside id="panel" class="panel"><p class="error">{message}</p></aside>',
                            status_code=422)  # 422 is the status htmx is set to swap in
    title = {404: "Not found", 409: "Already decided", 422: "That did not work", 503: "Try again shortly"}.get(
        exc.status_code, "Error")
    return TEMPLATES.TemplateResponse(request, "error.html", {"status": exc.status_code, "title": title,
                                                              "detail": exc.detail}, status_code=exc.status_code)
