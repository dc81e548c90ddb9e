"""Signed tokens for tracked links, the open pixel and one-click unsubscribe; and the email they go into."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any

import html2text

_LINK = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)


def sign(data: dict[str, Any], secret: bytes) -> str:
    body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":"), sort_keys=True).encode()).rstrip(b"=")
    mac = base64.urlsafe_b64encode(hmac.new(secret, body, hashlib.sha256).digest()[:18])
    return f"{body.decode()}.{mac.decode()}"


def unsign(token: str, secret: bytes) -> dict[str, Any]:
    body, _, mac = token.partition(".")
    expected = base64.urlsafe_b64encode(hmac.new(secret, body.encode(), hashlib.sha256).digest()[:18]).decode()
    if not mac or not hmac.compare_digest(mac, expected):
        raise ValueError("this link is not valid (its signature does not match)")
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def track_links(html: str, tracked: Callable[[str], str]) -> str:
    return _LINK.sub(lambda m: f"{m.group(1)}{m.group(2)}{tracked(m.group(3))}{m.group(2)}", html)


def compose_email(html: str, key: str, lead_id: str, public_url: str, secret: bytes) -> tuple[str, str, dict[str, str]]:
    """(HTML with tracked links, an unsubscribe footer and the open pixel; its plain-text part; headers)."""
    base = public_url.rstrip("/")
    unsubscribe = f"{base}/u/{sign({'l': lead_id, 'k': key}, secret)}"
    body = track_links(html, lambda url: f"{base}/t/c/{sign({'k': key, 'l': lead_id, 'u': url}, secret)}")
    footer = f'<p style="font-size:12px;color:#6b7280"><a href="{unsubscribe}">Unsubscribe</a></p>'
    pixel = f'<img src="{base}/t/o/{sign({"k": key, "l": lead_id}, secret)}" width="1" height="1" alt="">'
    full = f"{body}\n{footer}\n{pixel}"
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.images_to_alt = True
    text = converter.handle(f"{body}\n{footer}").strip() + "\n"
    headers = {"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return full, text, headers
