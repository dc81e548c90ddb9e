"""Our connectors pass the same contract test kit integrators run, against real servers on loopback."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import ConnectorContext, ConnectorError, InboundRejected, Message, RateLimited
from connectors.crm import BuiltinCrmConnector
from connectors.hubspot import HubSpotConnector
from connectors.linkedin import LinkedInConnector
from connectors.registry import build
from connectors.smtp import SmtpConnector, message_id
from connectors.testkit import ConnectorContract
from connectors.webhook import WebhookConnector, check_signature, signature
from engine.lead import LeadState
from nurture.cli import main
from store.sales import SalesStore
from store.store import Store
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.receiver import Receiver
from tests.fakes.serve import serving
from tests.fakes.smtp import Mailbox, smtp_server


class TestSmtpConnector(ConnectorContract):
    connector_class = SmtpConnector
    secrets = ["s3cret-smtp-password"]

    @pytest.fixture(autouse=True)
    def _server(self) -> Iterator[None]:
        with smtp_server() as (mailbox, port):
            self.mailbox: Mailbox = mailbox
            self.port = port
            yield

    def config(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "from_address": "Acme <hello@acme.test>"}

    def broken_config(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": 9, "from_address": "hello@acme.test", "username": "u",
                "password": "s3cret-smtp-password"}

    def message(self, key: str) -> Message:
        return Message(key, "email", "lead-1", "ada@example.com", "Hello", "<p>Hi <b>Ada</b></p>", "send",
                       text="Hi Ada\n", headers={"List-Unsubscribe": "<http://x/u/t>"})

    def seen_keys(self) -> list[str]:
        return [m["Message-ID"] for m in self.mailbox.messages]

    def remote_key(self, key: str) -> str:
        return message_id(key, "nurture.local")

    def test_email_is_multipart_with_unsubscribe_header(self) -> None:
        self.build(self.config()).send(self.message("k-1"))
        mail = self.mailbox.to("ada@example.com")[0]
        assert mail.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
        assert mail["List-Unsubscribe"] == "<http://x/u/t>" and mail["X-Nurture-Lead"] == "lead-1"

    def test_a_refused_recipient_is_a_bounce_not_a_retry(self) -> None:
        self.mailbox.refuse.add("ada@example.com")
        assert self.build(self.config()).send(self.message("k-2")).status == "bounced"

    def test_bounce_reports_need_the_shared_token(self) -> None:
        connector = self.build({**self.config(), "inbound_secret": "mta-token"})
        report = dsn("lead-1", "<abc@nurture.local>")
        with pytest.raises(InboundRejected):
            connector.verify_inbound({"X-Nurture-Inbound-Token": "wrong"}, report)
        [event] = connector.verify_inbound({"X-Nurture-Inbound-Token": "mta-token"}, report)
        assert (event.lead_id, event.type, event.data["hard"]) == ("lead-1", "email.bounced", True)


def dsn(lead_id: str, original_id: str, status: str = "5.1.1") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.test\r\nTo: bounces@acme.test\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\n"
        f"Final-Recipient: rfc822; ada@example.com\r\nAction: failed\r\nStatus: {status}\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original_id}\r\nX-Nurture-Lead: {lead_id}\r\nSubject: Hello\r\n\r\n--b--\r\n"
    ).encode()


class TestWebhookConnector(ConnectorContract):
    connector_class = WebhookConnector
    secrets = ["whsec-very-secret"]

    @pytest.fixture(autouse=True)
    def _receiver(self) -> Iterator[None]:
        self.receiver = Receiver()
        with serving(self.receiver.app) as url:
            self.url = url
            yield

    def config(self) -> dict[str, Any]:
        return {"secret": "whsec-very-secret"}

    def broken_config(self) -> dict[str, Any]:
        return {"secret": "whsec-very-secret", "timeout": 0.5}

    def message(self, key: str) -> Message:
        return Message(key, "webhook", "lead-1", f"{self.url}/hook", action="post", payload={"signal": "pricing"})

    def test_failures_explain_without_leaking_secrets(self, caplog: pytest.LogCaptureFixture) -> None:
        self.url = "http://127.0.0.1:9"  # nothing listens there
        connector = self.build(self.broken_config())
        with pytest.raises(ConnectorError) as raised:
            connector.send(self.message("k"))
        assert "whsec-very-secret" not in str(raised.value) + repr(connector)

    def seen_keys(self) -> list[str]:
        return [headers["idempotency-key"] for headers, _ in self.receiver.received]

    def test_outbound_is_signed_and_inbound_is_verified(self) -> None:
        connector = self.build(self.config())
        connector.send(self.message("k-1"))
        headers, body = self.receiver.received[0]
        check_signature(b"whsec-very-secret", body, headers["x-nurture-signature"], 300)
        assert json.loads(body)["payload"] == {"signal": "pricing"}

        event = json.dumps({"id": "e1", "lead_id": "lead-1", "type": "form.submitted"}).encode()
        good = {"X-Nurture-Signature": signature(b"whsec-very-secret", event, int(time.time()))}
        assert [e.type for e in connector.verify_inbound(good, event)] == ["form.submitted"]
        for bad in ({"X-Nurture-Signature": signature(b"other", event, int(time.time()))},
                    {"X-Nurture-Signature": signature(b"whsec-very-secret", event, 1_000_000)}, {}):
            with pytest.raises(InboundRejected):
                connector.verify_inbound(bad, event)


class TestHubSpotConnector(ConnectorContract):
    connector_class = HubSpotConnector
    secrets = ["pat-na1-secret-token"]

    @pytest.fixture(autouse=True)
    def _hubspot(self) -> Iterator[None]:
        self.hubspot = FakeHubSpot("pat-na1-secret-token")
        with serving(self.hubspot.app) as url:
            self.url = url
            yield

    def config(self) -> dict[str, Any]:
        return {"access_token": "pat-na1-secret-token", "base_url": self.url}

    def broken_config(self) -> dict[str, Any]:
        return {"access_token": "pat-na1-secret-token-but-wrong", "base_url": self.url}

    def message(self, key: str) -> Message:
        return Message(key, "crm", "lead-1", "ada@example.com", action="create_task",
                       payload={"email": "ada@example.com", "text": f"Call Ada ({key})"})

    def seen_keys(self) -> list[str]:
        tasks = self.hubspot.objects["tasks"].values()
        return [t["properties"]["hs_task_body"].split("(")[-1].rstrip(")") for t in tasks]

    def test_stage_field_task_and_note_land_on_one_contact(self) -> None:
        connector = self.build(self.config())
        send = lambda action, **p: connector.send(Message(f"k-{action}", "crm", "l", "ada@example.com",  # noqa: E731
                                                          action=action, payload={"email": "ada@example.com", **p}))
        send("set_stage", stage="mql")
        send("update_field", field="company", value="Lovelace Labs")
        send("create_task", text="Call Ada")
        send("add_note", text="Asked about pricing")
        contact = self.hubspot.contact("ada@example.com")
        assert contact["properties"]["lifecyclestage"] == "marketingqualifiedlead"
        assert contact["properties"]["company"] == "Lovelace Labs"
        assert sorted((kind, type_id) for kind, _, to, type_id in self.hubspot.associations if to == contact["id"]) \
            == [("notes", 202), ("tasks", 204)]
        assert len(self.hubspot.objects["contacts"]) == 1

    def test_a_429_asks_for_a_later_retry(self) -> None:
        self.hubspot.throttle = 1
        with pytest.raises(RateLimited) as raised:
            self.build(self.config()).send(self.message("k"))
        assert raised.value.retry_after == 1


class TestLinkedInConnector(ConnectorContract):
    connector_class = LinkedInConnector
    secrets = ["li-secret-token"]

    @pytest.fixture(autouse=True)
    def _linkedin(self) -> Iterator[None]:
        self.linkedin = FakeLinkedIn("li-secret-token")
        with serving(self.linkedin.app) as url:
            self.url = url
            yield

    def config(self) -> dict[str, Any]:
        return {"access_token": "li-secret-token", "base_url": self.url, "actor": "urn:li:person:sender"}

    def broken_config(self) -> dict[str, Any]:
        return {**self.config(), "access_token": "li-secret-token-expired"}

    def message(self, key: str) -> Message:
        return Message(key, "social", "lead-1", "urn:li:person:ada", body=f"Hi Ada {key}", action="message")

    def seen_keys(self) -> list[str]:
        return [body["body"].split()[-1] for path, body in self.linkedin.calls if path == "messages"]

    def test_a_lead_without_a_profile_is_skipped_with_a_reason(self) -> None:
        receipt = self.build(self.config()).send(Message("k", "social", "l", "", action="connect"))
        assert receipt.status == "skipped" and "LinkedIn member URN" in receipt.detail
        assert self.linkedin.calls == []


class TestBuiltinCrm(ConnectorContract):
    connector_class = BuiltinCrmConnector

    @pytest.fixture(autouse=True)
    def _store(self, tmp_path: Any) -> None:
        self.store = Store.open(f"sqlite:///{tmp_path / 'crm.db'}")
        self.store.upsert_lead(LeadState(id="lead-1", email="ada@example.com", stage="prospect"))

    def context(self) -> ConnectorContext:
        return ConnectorContext(store=self.store)

    def config(self) -> dict[str, Any]:
        return {}

    def broken_config(self) -> dict[str, Any]:
        return {}

    def message(self, key: str) -> Message:
        return Message(key, "crm", "lead-1", "", action="create_task", payload={"text": "Call Ada"})

    def seen_keys(self) -> list[str]:
        return [t.key for t in SalesStore(self.store).tasks("lead-1")]

    def test_failures_explain_without_leaking_secrets(self, caplog: pytest.LogCaptureFixture) -> None:
        with pytest.raises(ConnectorError, match="needs Nurture's store"):
            BuiltinCrmConnector().send(self.message("k"))

    def test_stage_moves_forward_with_history_and_never_backwards(self) -> None:
        crm = self.build({})
        forward = crm.send(Message("a", "crm", "lead-1", "", action="set_stage", payload={"stage": "mql"}))
        assert forward.status == "sent"
        back = crm.send(Message("b", "crm", "lead-1", "", action="set_stage", payload={"stage": "suspect"}))
        assert back.status == "skipped" and "forward only" in back.detail
        history = SalesStore(self.store).stage_history("lead-1")
        assert [(h.from_stage, h.to_stage) for h in history] == [("prospect", "mql")]


def test_registry_reports_configuration_mistakes_by_channel_and_field() -> None:
    with pytest.raises(ConnectorError, match="email: no connector named 'postmark'"):
        build({"email": {"connector": "postmark"}}, ConnectorContext())
    with pytest.raises(ConnectorError, match=r"social: connector 'smtp' is for the email channel"):
        build({"social": {"connector": "smtp", "from_address": "a@b.c"}}, ConnectorContext())
    with pytest.raises(ConnectorError, match=r"email \(smtp\): field 'from_address': Field required"):
        build({"email": {"connector": "smtp"}}, ConnectorContext())
    built = build({"email": {"connector": "smtp", "from_address": "a@b.c"}}, ConnectorContext())
    assert built["email"].name == "smtp" and built["crm"].name == "dryrun"


def test_rate_limit_holds_sends_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server() as (mailbox, port):
        email = build({"email": {"connector": "smtp", "port": port, "from_address": "a@b.c", "rate_per_minute": 60,
                                 "password": "pw-hidden", "username": None}}, ConnectorContext())["email"]
        first = email.send(Message("k1", "email", "l", "x@y.z", "s", "<p>b</p>"))
        with pytest.raises(RateLimited) as raised:
            email.send(Message("k2", "email", "l", "x@y.z", "s", "<p>b</p>"))
    assert first.status == "sent" and len(mailbox.messages) == 1 and 0 < raised.value.retry_after <= 1
    assert "pw-hidden" not in repr(email.inner) + caplog.text


def test_connectors_list_shows_installed_connectors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connectors", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("smtp", "builtin-crm", "hubspot", "linkedin", "webhook", "dryrun"):
        assert f"\n{name} " in out
