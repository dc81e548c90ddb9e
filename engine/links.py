"""Signed, expiring links for people: the first-run set-up, password resets, invitations, a rep's handover.

Each carries a fresh `jti`; the web app records it when the link is used, so it works once."""

from __future__ import annotations

import uuid
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

LIFETIMES = {"setup": 24 * 3600, "invite": 7 * 86400, "reset": 3600, "rep": 7 * 86400}
WORDS = {"setup": "set-up", "invite": "invitation", "reset": "password reset", "rep": "handover"}


def make(secret: bytes, purpose: str, **data: Any) -> str:
    return URLSafeTimedSerializer(secret, salt=f"nurture-{purpose}").dumps({**data, "jti": uuid.uuid4().hex})


def read(secret: bytes, purpose: str, token: str, max_age: int | None = None) -> dict[str, Any]:
    """The link's data; ValueError says, in words, why it cannot be used."""
    word = WORDS.get(purpose, purpose)
    try:
        data = URLSafeTimedSerializer(secret, salt=f"nurture-{purpose}").loads(
            token, max_age=max_age or LIFETIMES[purpose])
    except SignatureExpired:
        raise ValueError(f"this {word} link has expired; ask for a new one") from None
    except BadSignature:
        raise ValueError(f"this {word} link is not valid (it was changed or cut short)") from None
    if not isinstance(data, dict) or "jti" not in data:
        raise ValueError(f"this {word} link is not valid")
    return data
