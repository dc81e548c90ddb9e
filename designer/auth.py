"""Who is asking, and may they: every route declares a policy (a dependency), checked before its handler runs.

A person is known by a signed session cookie, an integration by an `Authorization: Bearer` API token. Sessions
are ambient credentials, so a state-changing request made with one must also carry the session's CSRF token
(htmx sends it as a header from the page; plain forms as a hidden field)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from designer.deps import accounts, settings
from engine.access import PERMISSIONS, ROLES
from store.accounts import SESSION_SECONDS
from store.tables import ApiToken, User

SESSION_COOKIE = "nurture_session"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
bearer = HTTPBearer(auto_error=False, scheme_name="token",
                    description="An API token from Settings → API tokens (`nurture tokens add`): `nrt_…`")


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in person, or an integration's token."""

    name: str  # as the audit log names them: an email address, or "token:<name>"
    permissions: frozenset[str]
    user: User | None = None
    token: ApiToken | None = None
    csrf: str = ""
    role: str = ""

    @property
    def rep_id(self) -> str:
        return self.user.rep_id if self.user else ""

    def may(self, permission: str) -> bool:
        return permission in self.permissions


class NotSignedIn(HTTPException):
    def __init__(self, detail: str = "sign in first") -> None:
        super().__init__(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings(request).secret(), salt="nurture-session")


def sign_in(request: Request, response: Response, user: User) -> None:
    secret = accounts(request).open_session(user.id or 0)
    secure = settings(request).https or request.url.scheme == "https"
    response.set_cookie(SESSION_COOKIE, _serializer(request).dumps(secret), max_age=SESSION_SECONDS,
                        httponly=True, samesite="lax", secure=secure, path="/")


def sign_out(request: Request, response: Response) -> None:
    secret = _cookie_secret(request)
    if secret:
        accounts(request).close_session(secret)
    response.delete_cookie(SESSION_COOKIE, path="/")


def _cookie_secret(request: Request) -> str | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return str(_serializer(request).loads(cookie, max_age=SESSION_SECONDS))
    except BadSignature:
        return None


def identify(request: Request, credentials: HTTPAuthorizationCredentials | None = None) -> Principal | None:
    """The principal behind this request, or None; remembered on the request."""
    if hasattr(request.state, "principal"):
        return request.state.principal
    found: Principal | None = None
    if credentials is not None:
        token = accounts(request).token(credentials.credentials)
        if token is None:
            raise NotSignedIn("the API token is unknown or revoked")
        found = Principal(f"token:{token.name}", frozenset(token.scopes), token=token)
    elif (secret := _cookie_secret(request)) and (signed_in := accounts(request).session(secret)):
        session, user = signed_in
        found = Principal(user.email, ROLES.get(user.role, frozenset()), user=user, csrf=session.csrf,
                          role=user.role)
    request.state.principal = found
    return found


def principal(request: Request) -> Principal:
    """The principal a policy already let in."""
    found = getattr(request.state, "principal", None)
    if found is None:
        raise NotSignedIn()
    return found


def actor(request: Request) -> str:
    found = getattr(request.state, "principal", None)
    return found.name if found is not None else "anonymous"


async def _check_csrf(request: Request, who: Principal) -> None:
    if who.user is None or request.method not in UNSAFE:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = str((await request.form()).get("csrf", ""))
    if not sent or not secrets.compare_digest(sent, who.csrf):
        raise HTTPException(403, "this request came without the page's CSRF token (from another site, or an old "
                                 "page): reload the page and try again")


class Allow:
    """Signed-in principals holding any one of `permissions` (none named: anyone signed in)."""

    def __init__(self, *permissions: str) -> None:
        unknown = [p for p in permissions if p not in PERMISSIONS]
        if unknown:
            raise ValueError(f"unknown permission(s) {unknown}")
        self.permissions = permissions

    def __repr__(self) -> str:
        return f"Allow{self.permissions}"

    async def __call__(self, request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Principal:
        who = identify(request, credentials)
        if who is None:
            raise NotSignedIn()
        if self.permissions and not any(who.may(p) for p in self.permissions):
            needs = " or ".join(f"'{p}'" for p in self.permissions)
            if who.token is not None:
                raise HTTPException(403, f"this token lacks the scope {needs}")
            raise HTTPException(403, f"your role ({who.role}) does not allow this: it needs {needs}; "
                                     "ask an admin")
        await _check_csrf(request, who)
        return who


class Public:
    """Open to anyone, for the reason given. Forms that sign people in refuse cross-site posts."""

    def __init__(self, why: str, same_site_posts: bool = False) -> None:
        self.why, self.same_site_posts = why, same_site_posts

    def __repr__(self) -> str:
        return f"Public({self.why!r})"

    async def __call__(self, request: Request) -> None:
        identify(request)
        if (self.same_site_posts and request.method in UNSAFE
                and request.headers.get("sec-fetch-site") == "cross-site"):
            raise HTTPException(403, "this form must be sent from Nurture's own page")


def allow(*permissions: str) -> Any:
    return Depends(Allow(*permissions))


def public(why: str, same_site_posts: bool = False) -> Any:
    return Depends(Public(why, same_site_posts))


# Pages may use only our own scripts; styles may be inline (the canvas positions nodes with style attributes).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]


class SecurityHeaders:
    """Adds the headers to every response (an ASGI middleware: no per-request task, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = {name.lower() for name, _ in message.get("headers", [])}  # a page may set its own CSP
                message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in given)]
            await send(message)

        await self.app(scope, receive, with_headers)
