"""Generic webhooks, signed both ways: `X-Nurture-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping

import httpx
from pydantic import Field, SecretStr

from connectors.base import (
    BaseConnector,
    ConnectorConfig,
    ConnectorError,
    InboundEvent,
    InboundRejected,
    Message,
    Receipt,
)
from connectors.outbound import Guard

SIGNATURE_HEADER = "X-Nurture-Signature"


def signature(secret: bytes, body: bytes, at: int) -> str:
    mac = hmac.new(secret, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def check_signature(secret: bytes, body: bytes, header: str, tolerance: int, now: float | None = None) -> None:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
        raise InboundRejected(f"{SIGNATURE_HEADER} is missing or malformed (expected t=...,v1=...)")
    at = int(parts["t"])
    if abs((now or time.time()) - at) > tolerance:
        raise InboundRejected(f"{SIGNATURE_HEADER} timestamp is more than {tolerance}s away from now")
    if not hmac.compare_digest(signature(secret, body, at).split("v1=")[1], parts["v1"]):
        raise InboundRejected(f"{SIGNATURE_HEADER} does not match the body")


class WebhookConfig(ConnectorConfig):
    secret: SecretStr = Field(description="shared HMAC secret for outbound and inbound signatures")
    timeout: float = 10
    tolerance_seconds: int = 300


class WebhookConnector(BaseConnector):
    name = "webhook"
    channel = "webhook"
    Config = WebhookConfig
    idempotent = True  # every call carries Idempotency-Key: message.key
    config: WebhookConfig

    def _secret(self) -> bytes:
        return self.config.secret.get_secret_value().encode()

    def send(self, message: Message) -> Receipt:
        body = json.dumps({"id": message.key, "lead_id": message.lead_id, "payload": message.payload},
                          separators=(",", ":"), sort_keys=True).encode()
        headers = {"content-type": "application/json", "Idempotency-Key": message.key,
                   SIGNATURE_HEADER: signature(self._secret(), body, int(time.time()))}
        try:
            with Guard(self.context.outbound_allow).client(timeout=self.config.timeout) as http:
                response = http.post(message.to, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ConnectorError(f"webhook {message.to}: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise ConnectorError(f"webhook {message.to} answered {response.status_code}")
        return Receipt("sent", response.headers.get("x-request-id", ""), f"HTTP {response.status_code}")

    def verify_inbound(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        header = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER.lower(), "")
        check_signature(self._secret(), body, header, self.config.tolerance_seconds)
        try:
            data = json.loads(body)
        except ValueError:
            raise InboundRejected("body is not JSON") from None
        items = data if isinstance(data, list) else [data]
        events = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("id", "lead_id", "type")):
                raise InboundRejected(f"event #{i + 1} needs string 'id', 'lead_id' and 'type'")
            events.append(InboundEvent(item["id"], item["lead_id"], item["type"], dict(item.get("data") or {})))
        return events
