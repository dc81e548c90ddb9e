"""The one small protocol every channel connector speaks: config, verify, send, inbound verification."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class ConnectorError(Exception):
    """A connector failed in a way worth retrying or showing. Its message never contains a secret."""


class RateLimited(ConnectorError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit reached; next slot in {retry_after:.1f}s")
        self.retry_after = retry_after


class InboundRejected(ConnectorError):
    """An inbound request failed verification (bad signature, stale timestamp, unknown shape)."""


@dataclass(frozen=True)
class Message:
    """One outbound effect. `key` is stable across retries: connectors pass it on as an idempotency key."""

    key: str
    channel: str
    lead_id: str
    to: str
    subject: str = ""
    body: str = ""  # HTML for email, plain text for social
    action: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the plain-text part of an email
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    status: str  # sent | dry_run
    external_id: str = ""
    detail: str = ""


@dataclass(frozen=True)
class InboundEvent:
    id: str
    lead_id: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorContext:
    """What Nurture lends a connector: where it is served from, and the app's store for built-in tables."""

    public_url: str = "http://127.0.0.1:8000"
    store: Any = None


class ConnectorConfig(BaseModel):
    """Base for every connector's settings. Secrets are pydantic SecretStr, so they never print."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_per_minute: float | None = Field(default=None, gt=0, description="most sends per minute")


@runtime_checkable
class Connector(Protocol):
    name: ClassVar[str]
    channel: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]]
    config: ConnectorConfig

    def verify(self) -> None:
        """Raise ConnectorError when the configuration cannot work (wrong host, bad token...)."""

    def send(self, message: Message) -> Receipt:
        """Deliver one message or perform one update; the same key must never act twice where avoidable."""

    def verify_inbound(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        """Check an inbound request's authenticity and turn it into lead events; raise InboundRejected."""


class BaseConnector:
    """Defaults for the optional parts of the protocol."""

    name: ClassVar[str] = ""
    channel: ClassVar[str] = ""
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig

    def __init__(self, config: ConnectorConfig | None = None, context: ConnectorContext | None = None) -> None:
        self.config = config if config is not None else self.Config()
        self.context = context or ConnectorContext()

    def verify(self) -> None:
        return None

    def send(self, message: Message) -> Receipt:
        raise NotImplementedError(f"connector '{self.name}' does not send")

    def verify_inbound(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        raise InboundRejected(f"connector '{self.name}' accepts no inbound requests")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"
