"""Running the installation: users and roles, API tokens, the connectors in use, and the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, SecretStr

from designer.auth import actor, allow, principal
from designer.deps import accounts, audit, connectors, settings
from designer.signin import password_link
from designer.templating import TEMPLATES
from engine.access import ROLE_NOTES, SCOPES
from store.audit import to_csv
from store.tables import AuditRow

router = APIRouter()


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)


# --- users ---------------------------------------------------------------------------------------------------


def _users(request: Request, error: str = "", invite: str = "", status: int = 200) -> Response:
    return _page(request, "admin/users.html", {"users": accounts(request).users(), "roles": ROLE_NOTES,
                                               "error": error, "invite": invite}, status)


@router.get("/admin/users", response_class=HTMLResponse, include_in_schema=False, dependencies=[allow("admin")])
def users_page(request: Request) -> Response:
    return _users(request)


@router.post("/admin/users", include_in_schema=False, dependencies=[allow("admin")])
def add_user(request: Request, email: Annotated[str, Form()], role: Annotated[str, Form()],
             name: Annotated[str, Form()] = "", rep_id: Annotated[str, Form()] = "") -> Response:
    try:
        user = accounts(request).add_user(email, role, name, rep_id=rep_id)
    except ValueError as exc:
        return _users(request, error=str(exc), status=422)
    audit(request).add(actor(request), "user.created", f"user:{user.email}", role=role, rep_id=rep_id)
    return _users(request, invite=password_link(settings(request), user, "invite"))


@router.post("/admin/users/{user_id}", include_in_schema=False, dependencies=[allow("admin")])
def change_user(request: Request, user_id: int, role: Annotated[str, Form()],
                active: Annotated[bool, Form()] = False, rep_id: Annotated[str, Form()] = "") -> Response:
    me = principal(request).user
    if me is not None and me.id == user_id and (role != "admin" or not active):
        return _users(request, error="you cannot take away your own admin role or account; ask another admin",
                      status=422)
    try:
        user, changed = accounts(request).change(user_id, role=role, active=active, rep_id=rep_id)
    except (KeyError, ValueError) as exc:
        return _users(request, error=str(exc).strip("'"), status=422)
    if changed:
        audit(request).add(actor(request), "user.changed", f"user:{user.email}", **changed)
    return RedirectResponse("/admin/users", status_code=303)


# --- API tokens ----------------------------------------------------------------------------------------------


def _tokens(request: Request, created: str = "", error: str = "", status: int = 200) -> Response:
    return _page(request, "admin/tokens.html", {"tokens": accounts(request).tokens(), "scopes": SCOPES,
                                                "created": created, "error": error}, status)


@router.get("/admin/tokens", response_class=HTMLResponse, include_in_schema=False, dependencies=[allow("admin")])
def tokens_page(request: Request) -> Response:
    return _tokens(request)


@router.post("/admin/tokens", include_in_schema=False, dependencies=[allow("admin")])
async def add_token(request: Request) -> Response:
    form = await request.form()
    scopes = [str(s) for s in form.getlist("scope")]
    try:
        plain, row = accounts(request).add_token(str(form.get("name", "")), scopes, actor(request))
    except ValueError as exc:
        return _tokens(request, error=str(exc), status=422)
    audit(request).add(actor(request), "token.created", f"token:{row.id}", name=row.name, scopes=row.scopes)
    return _tokens(request, created=plain)


@router.post("/admin/tokens/{token_id}/revoke", include_in_schema=False, dependencies=[allow("admin")])
def revoke_token(request: Request, token_id: str) -> Response:
    try:
        row = accounts(request).revoke(token_id)
    except KeyError as exc:
        raise HTTPException(404, str(exc).strip("'")) from None
    audit(request).add(actor(request), "token.revoked", f"token:{row.id}", name=row.name)
    return RedirectResponse("/admin/tokens", status_code=303)


# --- connectors ----------------------------------------------------------------------------------------------


@router.get("/admin/connectors", response_class=HTMLResponse, include_in_schema=False,
            dependencies=[allow("admin")])
def connectors_page(request: Request) -> Response:
    """What each channel uses and how it is set; secrets show as stars, never their value."""
    rows = []
    for channel, connector in sorted(connectors(request).items()):
        config = getattr(getattr(connector, "inner", connector), "config", None)
        fields = {k: ("••••••" if isinstance(v, SecretStr) else v)
                  for k, v in (dict(config) if isinstance(config, BaseModel) else {}).items()}
        rows.append({"channel": channel, "connector": connector.name, "settings": fields})
    return _page(request, "admin/connectors.html", {"rows": rows, "file": settings(request).connectors_file})


# --- the audit log -------------------------------------------------------------------------------------------


def _day(text: str, end: bool = False) -> float | None:
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise HTTPException(422, f"'{text}' is not a date: use YYYY-MM-DD") from None
    return day + 86400 if end else day


def _find(request: Request, actor_: str, object_: str, since: str, until: str) -> list[AuditRow]:
    return audit(request).find(actor_, object_, _day(since), _day(until, end=True))


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False, dependencies=[allow("audit:read")])
def audit_page(request: Request, actor: str = "", object: str = "", since: str = "", until: str = "") -> Response:
    return _page(request, "admin/audit.html", {
        "rows": _find(request, actor, object, since, until), "actors": audit(request).actors(),
        "actor": actor, "object": object, "since": since, "until": until})


@router.get("/audit.csv", include_in_schema=False, dependencies=[allow("audit:read")])
def audit_csv(request: Request, actor: str = "", object: str = "", since: str = "", until: str = "") -> Response:
    return PlainTextResponse(to_csv(_find(request, actor, object, since, until)), media_type="text/csv",
                             headers={"content-disposition": 'attachment; filename="nurture-audit.csv"'})


class AuditEntry(BaseModel):
    at: float
    actor: str
    action: str
    object: str
    detail: dict[str, Any]


@router.get("/api/audit", dependencies=[allow("audit:read")], tags=["audit"])
def audit_api(request: Request, actor: str = "", object: str = "", since: date | None = None,
              until: date | None = None) -> list[AuditEntry]:
    """Newest first. `object` matches a prefix (`care-model:welcome`); `since` and `until` are days, inclusive."""
    rows = _find(request, actor, object, since.isoformat() if since else "", until.isoformat() if until else "")
    return [AuditEntry(at=r.at, actor=r.actor, action=r.action, object=r.object, detail=r.detail) for r in rows]
