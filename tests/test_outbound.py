"""Outbound safety: webhooks and connectors never reach loopback, private, link-local or metadata addresses unless
an operator allows them, checked after DNS resolution and on every redirect; connector secrets come from the
environment and never show on a page."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from connectors.base import ConnectorContext, ConnectorError, Message
from connectors.outbound import Guard, OutboundRefused
from connectors.registry import read_config
from connectors.webhook import WebhookConnector
from designer.app import create_app
from nurture.settings import Settings
from store.store import Store
from tests.accounts import sign_in
from tests.conftest import harness_with
from tests.fakes.receiver import Receiver
from tests.fakes.serve import serving


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names this test's resolver answers itself (a stand-in for DNS records we cannot publish from here)."""
    names: dict[str, str] = {}
    real = socket.getaddrinfo

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return names


@pytest.mark.parametrize(("url", "kind"), [
    ("http://127.0.0.1:8000/admin", "127.0.0.1, a loopback address"),
    ("http://10.0.0.8/hook", "10.0.0.8, a private address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local (cloud metadata) address"),
    ("http://[::1]/", "::1, a loopback address"),
    ("http://localhost:9/", "127.0.0.1, a loopback address"),
    ("http://crm.innocent.test/hook", "10.1.2.3, a private address"),
])
def test_inward_addresses_are_refused_after_resolution(url: str, kind: str, dns: dict[str, str]) -> None:
    dns["crm.innocent.test"] = "10.1.2.3"  # a public-looking name that points inward
    with pytest.raises(OutboundRefused) as refused:
        Guard().check(url)
    assert kind in str(refused.value) and "NURTURE_OUTBOUND_ALLOW" in str(refused.value)


def test_an_operator_allow_list_lets_named_networks_and_hosts_through(dns: dict[str, str]) -> None:
    dns["crm.internal"] = "10.9.9.9"
    guard = Guard(["10.1.2.0/24", "crm.internal"])
    guard.check("http://10.1.2.3/hook")
    guard.check("http://crm.internal/api")
    with pytest.raises(OutboundRefused):
        guard.check("http://10.1.3.1/hook")
    with pytest.raises(OutboundRefused, match="not an http"):
        Guard().check("file:///etc/passwd")


def test_a_redirect_inward_is_refused_before_it_is_followed() -> None:
    bounce = FastAPI()

    @bounce.post("/hook")
    def hook() -> RedirectResponse:
        return RedirectResponse("http://169.254.169.254/latest/meta-data/iam", status_code=307)

    with serving(bounce) as url:
        allowed = ConnectorContext(outbound_allow=("127.0.0.1/32",))  # the first hop is allowed on purpose
        webhook = WebhookConnector(WebhookConnector.Config(secret="s", timeout=2), allowed)
        with pytest.raises(OutboundRefused, match=r"169\.254\.169\.254, a link-local"):
            webhook.send(Message("k1", "webhook", "lead-1", f"{url}/hook", payload={}))


async def test_a_webhook_step_aimed_at_loopback_fails_in_words_and_nothing_arrives(env: Any, store: Store) -> None:
    receiver = Receiver()
    with serving(receiver.app) as url:
        webhook = WebhookConnector(WebhookConnector.Config(secret="s"), ConnectorContext())
        async for nurture in harness_with(env, store, connectors={"webhook": webhook}):
            tag = uuid.uuid4().hex[:6]
            version = nurture.publish(f"""
                id: hook-{tag}
                name: Hook
                start: call
                steps:
                  - {{id: call, kind: webhook, url: "{url}/hook"}}
            """)
            _, handle = await nurture.enrol(version, nurture.lead())
            await nurture.finish(handle)
            [row] = [r for r in store.outbox(handle.id.split("/")[-1]) if r.step == "call"]
            assert row.status == "failed" and "127.0.0.1, a loopback address" in row.reason
    assert receiver.received == []


def test_connector_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "connectors.yaml"
    path.write_text("webhook: {connector: webhook, secret: '${HOOK_SECRET}'}\n")
    with pytest.raises(ConnectorError, match=r"webhook.secret: the environment variable HOOK_SECRET is not set"):
        read_config(path)
    monkeypatch.setenv("HOOK_SECRET", "s3cr3t-from-env")
    assert read_config(path)["webhook"]["secret"] == "s3cr3t-from-env"


async def test_the_connectors_page_never_shows_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "connectors.yaml"
    path.write_text("webhook: {connector: webhook, secret: '${HOOK_SECRET}', timeout: 7}\n")
    monkeypatch.setenv("HOOK_SECRET", "s3cr3t-from-env")
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    app = create_app(Settings(data_dir=tmp_path, connectors_file=path), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as web:
        await sign_in(web, store)
        page = (await web.get("/admin/connectors")).text
    assert "webhook" in page and "timeout</code>: 7" in page and "••••••" in page
    assert "s3cr3t-from-env" not in page
