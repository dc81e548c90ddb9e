"""A contract test suite for connectors. An integrator subclasses `ConnectorContract` in a pytest module,
fills in the hooks, and gets Nurture's expectations checked against their connector (see docs/connectors.md).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from connectors.base import BaseConnector, Connector, ConnectorConfig, ConnectorContext, ConnectorError, Message
from connectors.registry import CHANNELS, available


class ConnectorContract:
    """Subclass as `class TestMyConnector(ConnectorContract)` and fill in the hooks below."""

    connector_class: ClassVar[type[BaseConnector]]
    #: strings from your config that must never show in a repr, an error or a log line
    secrets: ClassVar[list[str]] = []

    def config(self) -> dict[str, Any]:
        """Settings that work against your test double or sandbox."""
        raise NotImplementedError

    def broken_config(self) -> dict[str, Any]:
        """Settings that fail (wrong host, bad token): errors must explain without leaking secrets."""
        raise NotImplementedError

    def message(self, key: str) -> Message:
        """A message your connector can deliver, keyed `key`."""
        raise NotImplementedError

    def seen_keys(self) -> list[str]:
        """Identifiers the remote end received (idempotency keys, Message-IDs): proof the key travels."""
        raise NotImplementedError

    def remote_key(self, key: str) -> str:
        """How `key` shows on the remote end; the key itself unless your connector derives one."""
        return key

    def context(self) -> ConnectorContext:
        """Test doubles run on this machine: loopback is allowed here, as an operator would allow it."""
        return ConnectorContext(outbound_allow=("127.0.0.0/8", "::1"))

    # --- the contract ----------------------------------------------------------------------------------

    def build(self, settings: dict[str, Any]) -> Connector:
        return self.connector_class(self.connector_class.Config.model_validate(settings), self.context())

    def test_declares_name_channel_and_a_pydantic_config(self) -> None:
        cls = self.connector_class
        assert cls.name, "set a `name`: it is how connectors.yaml refers to your connector"
        assert cls.channel in (*CHANNELS, "any"), f"`channel` must be one of {CHANNELS}"
        assert issubclass(cls.Config, ConnectorConfig)

    def test_is_discovered_through_its_entry_point(self) -> None:
        found = available()
        assert found.get(self.connector_class.name) is self.connector_class, (
            f"declare it under [project.entry-points.\"nurture.connectors\"] as {self.connector_class.name} = ...")

    def test_config_rejects_unknown_settings(self) -> None:
        with pytest.raises(ValidationError):
            self.connector_class.Config.model_validate({**self.config(), "no_such_setting": 1})

    def test_verify_accepts_a_working_config(self) -> None:
        self.build(self.config()).verify()

    def test_send_delivers_and_the_key_travels(self) -> None:
        receipt = self.build(self.config()).send(self.message("contract-send-1"))
        assert receipt.status in ("sent", "skipped", "bounced")
        if receipt.status == "sent":
            assert self.remote_key("contract-send-1") in self.seen_keys()

    def test_failures_explain_without_leaking_secrets(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        connector = self.build(self.broken_config())
        texts = [repr(connector), repr(connector.config), str(connector.config)]
        for attempt in (connector.verify, lambda: connector.send(self.message("contract-broken-1"))):
            with pytest.raises(ConnectorError) as raised:
                attempt()
            assert str(raised.value), "say what went wrong"
            texts.append(str(raised.value))
        texts += [r.getMessage() for r in caplog.records]
        for secret in self.secrets:
            assert not any(secret in text for text in texts), f"a secret leaked into: {texts}"
