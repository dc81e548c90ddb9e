"""The website side: the tracker script and its endpoint, hosted and embedded forms, double opt-in, and the pages
and API where marketers add sites and forms. Public routes check a site key, the Origin and a rate limit."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from connectors.base import ConnectorError, Undeliverable
from designer.assets import TEMPLATES_DIR
from designer.auth import actor, allow, public
from designer.deps import audit, connectors, invalid_input, same_id, settings, temporal_or_none
from designer.deps import store as store_of
from designer.limits import RateLimit
from designer.templating import TEMPLATES
from engine.tracking import unsign
from engine.webforms import HONEYPOT, STANDARD, FormDefinition, FormField, read_submission
from store.tables import Form as FormRow
from store.tables import FormSubmission, Site
from store.website import Hit, Website, origin_of
from workflows.website import accept, confirmation, definition, receive, send_confirmation, track

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api")
TRACKER = public("the website tracker: a public site key that can only add page views, from the site's origins")
FORMS = public("forms on websites: anyone may send one, rate limited, checked against the site's origins")
LINKS = public("the double opt-in link emailed to the visitor, signed for one submission")
MANAGE, READ = allow("website"), allow("leads:read", "website")


def _limit(request: Request, name: str, per_minute: int, burst: int | None = None) -> RateLimit:
    limits = request.app.state.__dict__.setdefault("limits", {})
    return limits.setdefault(name, RateLimit(per_minute, burst))


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


# --- the tracker ---------------------------------------------------------------------------------------


@router.get("/tracker.js", dependencies=[TRACKER])
def tracker_script() -> FileResponse:
    return FileResponse(TEMPLATES_DIR / "assets" / "tracker.js", media_type="text/javascript",
                        headers={"cache-control": "public, max-age=3600"})


class HitIn(BaseModel):
    k: str = Field(max_length=100, description="the site key")
    v: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$", description="the visitor's first-party id")
    i: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$", description="this view's id")
    u: str = Field(max_length=2000, pattern=r"^https?://")
    t: str = Field(default="", max_length=300)
    r: str = Field(default="", max_length=2000)
    c: bool = False


@router.post("/t/hit", status_code=204, dependencies=[TRACKER])
async def hit(request: Request) -> Response:
    """A page view from the tracker (a text/plain beacon, so browsers send it without a preflight)."""
    if request.headers.get("dnt") == "1" or request.headers.get("sec-gpc") == "1":
        return Response(status_code=204)  # the browser asks not to be tracked: nothing is kept
    body = await request.body()
    try:
        given = HitIn.model_validate(json.loads(body[:8192]))
    except (ValueError, ValidationError):
        raise HTTPException(400, "that is not a page view from Nurture's tracker") from None
    web = Website(store_of(request))
    site = web.site_by_key(given.k)
    if site is None:
        raise HTTPException(403, "unknown site key: copy the snippet from Nurture's Website page again")
    origin = request.headers.get("origin", "")
    if origin not in site.origins:
        raise HTTPException(403, f"{origin or 'a request without an Origin'} is not one of the origins of site "
                                 f"'{site.id}' ({', '.join(site.origins)})")
    if site.require_consent and not given.c:
        return Response(status_code=204)
    if not _limit(request, "tracker", settings(request).tracker_per_minute).allow(f"{site.id}:{_client(request)}"):
        raise HTTPException(429, "too many page views from this address; slow down")
    await track(await temporal_or_none(request), store_of(request), site,
                Hit(given.v, given.i, given.u, given.t, given.r), time.time(), settings(request).task_queue)
    return Response(status_code=204, headers={"access-control-allow-origin": origin, "vary": "Origin"})


# --- forms, as visitors see them ------------------------------------------------------------------------


def _form(request: Request, form_id: str) -> tuple[FormRow, FormDefinition, Site]:
    web = Website(store_of(request))
    row = web.form(form_id)
    site = web.site(row.site) if row else None
    if row is None or site is None:
        raise HTTPException(404, f"there is no form '{form_id}'")
    return row, definition(row), site


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200,
          redirect: str = "") -> Response:
    response = TEMPLATES.TemplateResponse(request, name, context, status_code=status)
    if redirect:  # the hosted form may hand the visitor on to the site's own thank-you page
        response.headers["content-security-policy"] = (
            f"default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self' {origin_of(redirect)}; "
            "base-uri 'none'; object-src 'none'; frame-ancestors 'none'")
    return response


@router.get("/f/{form_id}", response_class=HTMLResponse, dependencies=[FORMS])
def hosted_form(request: Request, form_id: str) -> Response:
    row, spec, _ = _form(request, form_id)
    return _page(request, "website/form.html", {"form": spec, "values": {}, "problems": {}}, redirect=row.redirect)


@router.post("/f/{form_id}", dependencies=[FORMS])
async def submit(request: Request, form_id: str) -> Response:
    """A visitor sends the form: from the hosted page, an embedded copy on the site (form-encoded), or a script
    (JSON). Answers in kind: a page, a redirect to the site's thank-you page, or JSON."""
    row, spec, site = _form(request, form_id)
    wants_json = request.headers.get("content-type", "").startswith("application/json")
    origin = request.headers.get("origin", "")
    own = origin_of(settings(request).public_base)
    if origin and origin not in (*site.origins, own, str(request.base_url).rstrip("/")):
        raise HTTPException(403, f"this form may be sent only from {', '.join(site.origins)}")
    try:
        values = dict(await request.json()) if wants_json else dict(await request.form())
    except (ValueError, TypeError):
        raise HTTPException(400, "send the form's fields as a JSON object or as form fields") from None
    if values.get(HONEYPOT):  # a bot: answered as if it worked, kept nowhere
        return _answer(request, row, spec, wants_json, "received")
    per_minute = settings(request).forms_per_minute
    if not _limit(request, "forms", per_minute, burst=per_minute).allow(_client(request)):
        raise HTTPException(429, "too many forms sent from your address; try again in a minute")
    given, problems = read_submission(spec, values)
    if given is None:
        if wants_json:
            return JSONResponse({"status": "invalid", "problems": problems}, status_code=422)
        return _page(request, "website/form.html", {"form": spec, "values": values, "problems": problems}, 422)
    channel = connectors(request).get("email")
    if spec.double_opt_in and (channel is None or channel.name == "dryrun"):
        raise HTTPException(503, "this form confirms addresses by email, and email is not set up here yet (the "
                                 "email channel is in dry-run): nothing was kept, try again later")
    client = await temporal_or_none(request)
    saved = await receive(client, store_of(request), row, given, str(values.get("nurture_visitor") or "")[:64],
                          _client(request), time.time(), settings(request).task_queue)
    if saved.status == "unconfirmed" and channel is not None:
        try:
            await send_confirmation(channel, confirmation(row, saved, settings(request).public_base,
                                                          settings(request).secret()))
        except Undeliverable as exc:  # the address itself was refused: the visitor can correct it
            raise HTTPException(422, f"we could not email {saved.email}: {exc}") from None
        except ConnectorError as exc:
            raise HTTPException(503, f"the confirmation email could not be sent ({exc}); please send the form "
                                     "again in a few minutes") from None
        return _answer(request, row, spec, wants_json, "confirm_by_email", saved.id)
    return _answer(request, row, spec, wants_json, "received", saved.id)


def _answer(request: Request, row: FormRow, spec: FormDefinition, wants_json: bool, status: str,
            submission: str = "") -> Response:
    if wants_json:
        return JSONResponse({"status": status, "submission": submission})
    if status == "received" and spec.redirect:
        return RedirectResponse(spec.redirect, status_code=303)
    return _page(request, "website/thanks.html", {"form": spec, "status": status})


def _confirming(request: Request, token: str) -> tuple[FormSubmission, FormRow]:
    try:
        data = unsign(token, settings(request).secret())
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    if time.time() > data["x"]:
        raise HTTPException(410, "this confirmation link has expired; send the form again")
    web = Website(store_of(request))
    row = web.submission(data["s"])
    form = web.form(row.form) if row else None
    if row is None or form is None:
        raise HTTPException(404, "this confirmation is no longer known")
    return row, form


@router.get("/f/confirm/{token}", response_class=HTMLResponse, dependencies=[LINKS])
def confirm_page(request: Request, token: str) -> Response:
    """Link scanners open links in emails: only the button (a POST) confirms."""
    row, form = _confirming(request, token)
    return _page(request, "website/confirm.html", {"token": token, "email": row.email, "form": form,
                                                   "done": bool(row.lead_id)})


@router.post("/f/confirm/{token}", response_class=HTMLResponse, dependencies=[LINKS])
async def confirm(request: Request, token: str) -> Response:
    row, form = _confirming(request, token)
    if not row.lead_id:
        await accept(await temporal_or_none(request), store_of(request), form, row, time.time(),
                     settings(request).task_queue)
    return _page(request, "website/confirm.html", {"token": token, "email": row.email, "form": form, "done": True})


# --- sites and forms, as marketers manage them ----------------------------------------------------------


class SiteIn(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = ""
    origins: list[str] = Field(min_length=1, description="where the site is served from: https://www.example.com")
    require_consent: bool = Field(default=False, description="track only after the page calls nurture.consent(true)")


def _snippet(request: Request, site: Site) -> str:
    consent = ' data-consent="required"' if site.require_consent else ""
    return (f'<script async src="{settings(request).public_base}/tracker.js" data-site="{site.key}"{consent}>'
            "</script>")


def _site_json(request: Request, site: Site) -> dict[str, Any]:
    return site.model_dump() | {"snippet": _snippet(request, site)}


def _embed(request: Request, spec: FormDefinition) -> str:
    return TEMPLATES.get_template("website/fields.html").module.embed(  # type: ignore[attr-defined]
        spec, f"{settings(request).public_base}/f/{spec.id}").strip()


def _add_site(request: Request, given: SiteIn) -> Site:
    site = Website(store_of(request)).add_site(given.id, given.name, given.origins, given.require_consent,
                                               time.time())
    audit(request).add(actor(request), "site.added", f"site:{site.id}", origins=site.origins)
    return site


def _save_form(request: Request, spec: FormDefinition) -> FormRow:
    row = Website(store_of(request)).save_form(FormRow(**spec.model_dump(), created_at=time.time()))
    audit(request).add(actor(request), "form.saved", f"form:{row.id}", site=row.site)
    return row


@api.get("/sites", dependencies=[READ])
def list_sites(request: Request) -> list[dict[str, Any]]:
    return [_site_json(request, s) for s in Website(store_of(request)).sites()]


@api.post("/sites", status_code=201, dependencies=[MANAGE])
def add_site(request: Request, given: SiteIn) -> dict[str, Any]:
    """A site for the tracker: its key goes into the snippet; page views are taken only from its origins."""
    try:
        return _site_json(request, _add_site(request, given))
    except ValueError as exc:
        raise invalid_input("body", str(exc), given.id, "id") from None


@api.get("/forms", dependencies=[READ])
def list_forms(request: Request) -> list[dict[str, Any]]:
    return [definition(f).model_dump() | {"embed": _embed(request, definition(f))}
            for f in Website(store_of(request)).forms()]


@api.put("/forms/{form_id}", dependencies=[MANAGE])
def put_form(request: Request, form_id: str, spec: Annotated[FormDefinition, Body()]) -> dict[str, Any]:
    """Creates or replaces a form. Visitors send it to /f/{id}: form fields from the embedded HTML, or JSON."""
    same_id(spec.id, form_id)
    try:
        row = _save_form(request, spec)
    except ValueError as exc:
        raise invalid_input("body", str(exc), spec.site, "site") from None
    return definition(row).model_dump() | {"embed": _embed(request, definition(row))}


@api.get("/forms/{form_id}/submissions", dependencies=[allow("leads:read")])
def form_submissions(request: Request, form_id: str) -> list[dict[str, Any]]:
    """What visitors sent, newest first, with the consent each agreed to and when they confirmed."""
    return [s.model_dump() for s in Website(store_of(request)).submissions(form_id=form_id)]


@router.get("/website", response_class=HTMLResponse, dependencies=[READ])
def website_page(request: Request, saved: str = "") -> Response:
    web = Website(store_of(request))
    sites = web.sites()
    forms = [(definition(f), _embed(request, definition(f))) for f in web.forms()]
    return TEMPLATES.TemplateResponse(request, "website/index.html", {
        "sites": [(s, _snippet(request, s)) for s in sites], "forms": forms, "counts": web.counts(),
        "standard": STANDARD, "saved": saved, "error": ""})


@router.post("/website/sites", dependencies=[MANAGE])
def add_site_form(request: Request, id: Annotated[str, Form()], origins: Annotated[str, Form()],
                  name: Annotated[str, Form()] = "", require_consent: Annotated[str, Form()] = "") -> Response:
    try:
        given = SiteIn(id=id.strip(), name=name.strip(), origins=origins.split(), require_consent=bool(require_consent))
    except ValidationError as exc:
        raise HTTPException(422, f"site: {exc.errors()[0]['msg']}") from None
    try:
        site = _add_site(request, given)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return RedirectResponse(f"/website?saved=site:{site.id}", status_code=303)


@router.post("/website/forms", dependencies=[MANAGE])
async def save_form_form(request: Request) -> Response:
    """The form builder: the fields to ask (ticked), which are required, the consent text and what happens after."""
    values = await request.form()
    fields = [FormField(name=name, required=bool(values.get(f"required_{name}")) or name == "email")
              for name in STANDARD if name == "email" or values.get(f"ask_{name}")]
    try:
        spec = FormDefinition(id=str(values.get("id", "")).strip(), site=str(values.get("site", "")),
                              name=str(values.get("name", "")).strip(), fields=fields,
                              consent_text=str(values.get("consent_text", "")).strip(),
                              double_opt_in=bool(values.get("double_opt_in")),
                              thanks=str(values.get("thanks", "")).strip() or "Thank you.",
                              redirect=str(values.get("redirect", "")).strip())
    except ValidationError as exc:
        raise HTTPException(422, "; ".join(f"{'.'.join(map(str, e['loc'])) or 'form'}: {e['msg']}"
                                           for e in exc.errors())) from None
    try:
        row = _save_form(request, spec)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return RedirectResponse(f"/website?saved=form:{row.id}", status_code=303)
