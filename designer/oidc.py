"""Single sign-on with OpenID Connect (authorization code flow): the provider is found through its discovery
document; the ID token is checked with joserfc (the Authlib project's JOSE library) against the provider's keys,
issuer, audience, expiry and our nonce."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from designer.deps import settings
from nurture.settings import Settings

COOKIE = "nurture_sso"
FLOW_SECONDS = 600


class SignOnFailed(Exception):
    """The provider, or its answer, did not let this person in; the message says why."""


def configured(s: Settings) -> bool:
    return bool(s.oidc_issuer and s.oidc_client_id)


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings(request).secret(), salt="nurture-sso")


def _redirect_uri(request: Request) -> str:
    return f"{settings(request).public_base}/sign-in/sso/callback"


async def _provider(request: Request) -> dict[str, Any]:
    """The discovery document, fetched once per process."""
    cached = getattr(request.app.state, "oidc_provider", None)
    if cached is not None:
        return cached
    issuer = (settings(request).oidc_issuer or "").rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            found = (await http.get(f"{issuer}/.well-known/openid-configuration")).raise_for_status().json()
    except (httpx.HTTPError, ValueError) as exc:
        raise HTTPException(503, f"the sign-on provider {issuer} did not answer ({type(exc).__name__})") from None
    request.app.state.oidc_provider = found
    return found


async def start(request: Request, next_path: str) -> Response:
    s = settings(request)
    if not configured(s):
        raise HTTPException(404, "single sign-on is not set up here (NURTURE_OIDC_ISSUER, NURTURE_OIDC_CLIENT_ID)")
    provider = await _provider(request)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    query = urlencode({"response_type": "code", "client_id": s.oidc_client_id, "redirect_uri": _redirect_uri(request),
                       "scope": "openid email profile", "state": state, "nonce": nonce})
    response = RedirectResponse(f"{provider['authorization_endpoint']}?{query}", status_code=302)
    response.set_cookie(COOKIE, _serializer(request).dumps({"state": state, "nonce": nonce, "next": next_path}),
                        max_age=FLOW_SECONDS, httponly=True, samesite="lax", secure=s.https, path="/sign-in/sso")
    return response


async def finish(request: Request) -> tuple[str, str]:
    """(the verified email address, where to go next)."""
    s, params = settings(request), request.query_params
    try:
        flow = _serializer(request).loads(request.cookies.get(COOKIE, ""), max_age=FLOW_SECONDS)
    except BadSignature:
        raise SignOnFailed("the sign-on took too long or started elsewhere; try again") from None
    if "error" in params:
        raise SignOnFailed(f"the provider refused: {params.get('error_description') or params['error']}")
    if not secrets.compare_digest(params.get("state", ""), flow["state"]):
        raise SignOnFailed("the sign-on answer does not belong to this browser (state mismatch); try again")
    provider = await _provider(request)
    secret = s.oidc_client_secret.get_secret_value() if s.oidc_client_secret else ""
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            tokens = (await http.post(provider["token_endpoint"], auth=(s.oidc_client_id, secret), data={
                "grant_type": "authorization_code", "code": params.get("code", ""),
                "redirect_uri": _redirect_uri(request)})).raise_for_status().json()
            keys = KeySet.import_key_set((await http.get(provider["jwks_uri"])).raise_for_status().json())
        token = jwt.decode(tokens["id_token"], keys, algorithms=["RS256", "ES256"])
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": provider["issuer"]},
                              aud={"essential": True, "value": s.oidc_client_id},
                              nonce={"essential": True, "value": flow["nonce"]},
                              exp={"essential": True}).validate(token.claims)
    except (httpx.HTTPError, KeyError, ValueError, JoseError) as exc:
        raise SignOnFailed(f"the provider's answer could not be verified ({type(exc).__name__}: {exc})") from None
    email = str(token.claims.get("email") or "").strip().lower()
    if not email or token.claims.get("email_verified") is False:
        raise SignOnFailed("the provider gave no verified email address for this person")
    return email, str(flow.get("next") or "/")


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/sign-in/sso")
