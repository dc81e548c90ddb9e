"""A local stand-in for an OpenID Connect provider, following the discovery, authorization-code, token and JWKS
shapes of OpenID Connect Core 1.0 and Discovery 1.0. It signs in whoever `person` names, without a login page."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID, CLIENT_SECRET = "nurture-test", "test-client-secret"


def provider(person: dict[str, Any]) -> FastAPI:
    """`person`: the claims of whoever signs in next (email, email_verified, name); change it between tests."""
    app = FastAPI()
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
    codes: dict[str, dict[str, str]] = {}

    @app.get("/.well-known/openid-configuration")
    def discovery(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {"issuer": base, "authorization_endpoint": f"{base}/authorize", "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks", "response_types_supported": ["code"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]}

    @app.get("/authorize")
    def authorize(response_type: str, client_id: str, redirect_uri: str, scope: str, state: str,
                  nonce: str) -> RedirectResponse:
        if response_type != "code" or client_id != CLIENT_ID or "openid" not in scope.split():
            return RedirectResponse(f"{redirect_uri}?{urlencode({'error': 'invalid_request', 'state': state})}")
        code = secrets.token_urlsafe(16)
        codes[code] = {"nonce": nonce, "redirect_uri": redirect_uri}
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}")

    @app.post("/token")
    def token(request: Request, grant_type: str = Form(), code: str = Form(),
              redirect_uri: str = Form()) -> dict[str, Any]:
        basic = request.headers.get("authorization", "")
        if basic != "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode():
            raise HTTPException(401, "invalid_client")
        grant = codes.pop(code, None)
        if grant_type != "authorization_code" or grant is None or grant["redirect_uri"] != redirect_uri:
            raise HTTPException(400, "invalid_grant")
        now = int(time.time())
        claims = {"iss": str(request.base_url).rstrip("/"), "aud": CLIENT_ID, "sub": person["email"], "iat": now,
                  "exp": now + 300, "nonce": grant["nonce"], **person}
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, key)
        return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token,
                "expires_in": 300}

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False)]}

    return app
