"""Signing in and out: the password form with throttling, the first-run link, password resets and invitations,
and single sign-on with OpenID Connect."""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from connectors.base import ConnectorError, Message
from designer import oidc
from designer.auth import allow, principal, public, sign_in, sign_out
from designer.deps import accounts, audit, connectors, settings
from designer.templating import TEMPLATES
from engine import links
from nurture.settings import Settings
from store.accounts import Accounts, check_email, check_password
from store.store import Store
from store.tables import User

router = APIRouter(include_in_schema=False)


def first_run_link(settings: Settings, store: Store) -> str | None:
    """With no users yet: a one-time link that creates the first admin (printed at start, as Jupyter prints its
    token)."""
    if Accounts(store).any_users():
        return None
    return f"{settings.public_base}/setup/{links.make(settings.secret(), 'setup')}"


def password_link(settings: Settings, user: User, purpose: str = "reset") -> str:
    """A reset or invitation link for this user; it stops working once used or once the password changes."""
    token = links.make(settings.secret(), purpose, u=user.id, p=_fingerprint(user))
    return f"{settings.public_base}/password/{purpose}/{token}"


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def _next(target: str) -> str:
    """Only a path on this site: a sign-in link must not bounce people elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return TEMPLATES.TemplateResponse(request, name, {"sso": oidc.configured(settings(request)), **context},
                                      status_code=status)


@router.get("/sign-in", response_class=HTMLResponse, dependencies=[public("signing in")])
def sign_in_page(request: Request, next: str = "/") -> Response:
    return _page(request, "account/sign_in.html", {"next": _next(next), "error": "", "email": ""})


@router.post("/sign-in", dependencies=[public("signing in", same_site_posts=True)])
def sign_in_form(request: Request, email: Annotated[str, Form()], password: Annotated[str, Form()],
                 next: Annotated[str, Form()] = "/") -> Response:
    people = accounts(request)
    keys = [f"email:{email.strip().lower()}", f"ip:{request.client.host if request.client else '?'}"]
    wait = people.locked_for(keys)
    if wait > 0:
        return _page(request, "account/sign_in.html", {
            "next": _next(next), "email": email,
            "error": f"Too many failed sign-ins. Try again in {int(wait // 60) + 1} minute(s), or reset your "
                     "password."}, 429)
    user = people.verify(email, password)
    if user is None:
        people.failed(keys)
        return _page(request, "account/sign_in.html", {"next": _next(next), "email": email,
                                                       "error": "That email and password do not match."}, 401)
    people.succeeded(keys)
    response = RedirectResponse(_next(next), status_code=303)
    sign_in(request, response, user)
    return response


@router.post("/sign-out", dependencies=[allow()])
def sign_out_form(request: Request) -> Response:
    response = RedirectResponse("/sign-in", status_code=303)
    sign_out(request, response)
    return response


# --- the first admin -----------------------------------------------------------------------------------------


def _setup_token(request: Request, token: str) -> dict[str, Any]:
    try:
        data = links.read(settings(request).secret(), "setup", token)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    if accounts(request).any_users():
        raise HTTPException(409, "Nurture is already set up: sign in, or ask an admin for an account")
    return data


@router.get("/setup/{token}", response_class=HTMLResponse, dependencies=[public("the first-run link")])
def setup_page(request: Request, token: str) -> Response:
    _setup_token(request, token)
    return _page(request, "account/password.html", {"mode": "setup", "action": f"/setup/{token}", "error": "",
                                                    "email": ""})


@router.post("/setup/{token}", dependencies=[public("the first-run link", same_site_posts=True)])
def setup(request: Request, token: str, email: Annotated[str, Form()], password: Annotated[str, Form()],
          name: Annotated[str, Form()] = "") -> Response:
    data = _setup_token(request, token)
    try:
        check_password(password)
        check_email(email)  # every check before the link is used up
        if not accounts(request).use_once(data["jti"]):
            raise HTTPException(409, "this set-up link was used already")
        user = accounts(request).add_user(email, "admin", name, password)
    except ValueError as exc:
        return _page(request, "account/password.html", {"mode": "setup", "action": f"/setup/{token}",
                                                        "error": str(exc), "email": email}, 422)
    audit(request).add(user.email, "user.created", f"user:{user.email}", role="admin", how="first-run link")
    response = RedirectResponse("/designer", status_code=303)
    sign_in(request, response, user)
    return response


# --- password resets and invitations ------------------------------------------------------------------------


@router.get("/password/reset", response_class=HTMLResponse, dependencies=[public("asking for a password reset")])
def reset_request_page(request: Request) -> Response:
    return _page(request, "account/reset.html", {"sent": False, "error": ""})


@router.post("/password/reset", dependencies=[public("asking for a password reset", same_site_posts=True)])
async def reset_request(request: Request, email: Annotated[str, Form()]) -> Response:
    """The same answer whether or not the address has an account, so the form does not tell who has one."""
    user = accounts(request).by_email(email)
    channel = connectors(request).get("email")
    if channel is None or channel.name == "dryrun":
        return _page(request, "account/reset.html", {"sent": False, "error": (
            "Email is not set up here (the email channel is in dry-run), so no link can be sent. An admin can make "
            "one: nurture users reset EMAIL")}, 503)
    if user is not None and user.active:
        link = password_link(settings(request), user)
        text = (f"Someone asked to reset the Nurture password for {user.email}.\n\nChoose a new one within the hour: "
                f"{link}\n\nIf it was not you, ignore this email: the password stays as it is.\n")
        message = Message(f"password-reset/{secrets.token_hex(8)}", "email", "", user.email,
                          "Reset your Nurture password", f"<p>{text.replace(chr(10), '<br>')}</p>", "send", text=text)
        try:
            await run_in_threadpool(channel.send, message)
        except ConnectorError as exc:
            raise HTTPException(503, f"the email could not be sent ({exc}); try again shortly") from None
        audit(request).add(user.email, "password.reset_requested", f"user:{user.email}")
    return _page(request, "account/reset.html", {"sent": True, "error": ""})


def _password_token(request: Request, purpose: str, token: str) -> tuple[User, dict[str, Any]]:
    if purpose not in ("reset", "invite"):
        raise HTTPException(404, "no such link")
    try:
        data = links.read(settings(request).secret(), purpose, token)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    user = accounts(request).user(int(data.get("u", 0)))
    if user is None or not user.active or data.get("p") != _fingerprint(user):
        raise HTTPException(400, f"this {links.WORDS[purpose]} link was used already or replaced by a newer one")
    return user, data


@router.get("/password/{purpose}/{token}", response_class=HTMLResponse,
            dependencies=[public("a password reset or invitation link")])
def password_page(request: Request, purpose: str, token: str) -> Response:
    user, _ = _password_token(request, purpose, token)
    return _page(request, "account/password.html", {"mode": purpose, "action": f"/password/{purpose}/{token}",
                                                    "error": "", "email": user.email})


@router.post("/password/{purpose}/{token}",
             dependencies=[public("a password reset or invitation link", same_site_posts=True)])
def set_password(request: Request, purpose: str, token: str, password: Annotated[str, Form()]) -> Response:
    user, data = _password_token(request, purpose, token)
    try:
        check_password(password)
    except ValueError as exc:
        return _page(request, "account/password.html", {"mode": purpose, "action": f"/password/{purpose}/{token}",
                                                        "error": str(exc), "email": user.email}, 422)
    if not accounts(request).use_once(data["jti"]):
        raise HTTPException(400, f"this {links.WORDS[purpose]} link was used already")
    accounts(request).set_password(user.id or 0, password)
    audit(request).add(user.email, f"password.{'set' if purpose == 'invite' else 'reset'}", f"user:{user.email}")
    response = RedirectResponse("/", status_code=303)
    sign_in(request, response, user)
    return response


# --- single sign-on ------------------------------------------------------------------------------------------


@router.get("/sign-in/sso", dependencies=[public("single sign-on")])
async def sso_start(request: Request, next: str = "/") -> Response:
    return await oidc.start(request, _next(next))


@router.get("/sign-in/sso/callback", dependencies=[public("single sign-on")])
async def sso_callback(request: Request) -> Response:
    try:
        email, target = await oidc.finish(request)
    except oidc.SignOnFailed as exc:
        return _page(request, "account/sign_in.html", {"next": "/", "email": "", "error": str(exc)}, 401)
    people, s = accounts(request), settings(request)
    user = people.by_email(email)
    if user is None and s.oidc_default_role:
        user = people.add_user(email, s.oidc_default_role)
        audit(request).add(email, "user.created", f"user:{email}", role=s.oidc_default_role, how="single sign-on")
    if user is None or not user.active:
        return _page(request, "account/sign_in.html", {"next": "/", "email": email, "error": (
            f"{email} has no Nurture account here; ask an admin to add it")}, 403)
    response = RedirectResponse(_next(target), status_code=303)
    oidc.forget(response)
    sign_in(request, response, user)
    return response


def home_for(request: Request) -> str:
    """Marketing people start in the designer, sales people in their inbox."""
    return "/designer" if principal(request).may("care-models:read") else "/inbox"

