"""The one small protocol every channel connector speaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Message:
    """One outbound effect. `key` is stable across retries: connectors pass it on as an idempotency key."""

    key: str
    channel: str
    lead_id: str
    to: str
    subject: str = ""
    body: str = ""
    action: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    status: str  # sent | dry_run
    external_id: str = ""
    detail: str = ""


@runtime_checkable
class Connector(Protocol):
    name: str

    def send(self, message: Message) -> Receipt: ...
