"""Shared HTTP handling for REST connectors: bearer auth, rate-limit answers, errors without secrets."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from connectors.base import ConnectorError, RateLimited
from connectors.outbound import Guard


def bearer_client(base_url: str, token: SecretStr, timeout: float, guard: Guard, **headers: str) -> httpx.Client:
    return guard.client(base_url=base_url, timeout=timeout,
                        headers={"authorization": f"Bearer {token.get_secret_value()}", **headers})


def call(client: httpx.Client, method: str, path: str, service: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise ConnectorError(f"{service} {method} {path}: {type(exc).__name__}") from None
    if response.status_code == 429:
        raise RateLimited(float(response.headers.get("retry-after", "10")))
    if response.status_code == 401:
        raise ConnectorError(f"{service} rejected the access token (401)")
    if response.status_code >= 400:
        try:
            detail = response.json().get("message", "")
        except ValueError:
            detail = response.text[:200]
        raise ConnectorError(f"{service} {method} {path} answered {response.status_code}: {detail}")
    return response.json() if response.content else {}
