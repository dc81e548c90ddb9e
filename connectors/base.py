"""The one small protocol every channel connector speaks: config, verify, send, inbound verification."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class ConnectorError(Exception):
    """A connector failed in a way worth retrying or showing. Its message never contains a secret."""


class RateLimited(ConnectorError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit reached; next slot in {retry_after:.1f}s")
        self.retry_after = retry_after


class MaybeDelivered(ConnectorError):
    """The provider may have accepted the message before the failure (say, a timeout after the content was sent).

    Raise it instead of ConnectorError then: Nurture will not resend blindly (see `on_uncertain`)."""


class Undeliverable(ConnectorError):
    """No retry can succeed (an invalid address, say): the delivery is recorded as failed and the lead moves on."""


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
    # Private networks and hosts an operator lets connectors call (connectors.outbound.Guard).
    outbound_allow: tuple[str, ...] = ()


class ConnectorConfig(BaseModel):
    """Base for every connector's settings. Secrets are pydantic SecretStr, so they never print."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_per_minute: float | None = Field(default=None, gt=0, description="most sends per minute")
    on_uncertain: Literal["skip", "resend"] = Field(
        default="skip", description="after an attempt that may have reached the provider: record it as "
        "'uncertain' and never send it again automatically (skip), or send it again (resend)")


@runtime_checkable
class Connector(Protocol):
    name: ClassVar[str]
    channel: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]]
    config: ConnectorConfig
    idempotent: ClassVar[bool]

    def verify(self) -> None:
        """Raise ConnectorError when the configuration cannot work (wrong host, bad token...)."""

    def send(self, message: Message) -> Receipt:
        """Deliver one message or perform one update; the same key must never act twice where avoidable."""

    def verify_inbound(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        """Check an inbound request's authenticity and turn it into lead events; raise InboundRejected."""


def resend_is_safe(connector: Any) -> bool:
    """Whether a send that may have reached the provider is sent again: the provider drops repeated keys, or the
    operator chose `on_uncertain: resend`. (Read leniently: connectors written before these existed skip.)"""
    config = getattr(connector, "config", None)
    return bool(getattr(connector, "idempotent", False)) or getattr(config, "on_uncertain", "skip") == "resend"


class BaseConnector:
    """Defaults for the optional parts of the protocol."""

    name: ClassVar[str] = ""
    channel: ClassVar[str] = ""
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    # True when the provider drops a repeated idempotency key (`message.key`): then a resend is always safe.
    idempotent: ClassVar[bool] = False

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
