"""The whole way in, in real Chromium against `nurture up` (real Temporal, real SMTP on loopback): a visitor
arrives on a small sample site from a paid search ad, views three pages, sends the guide form, confirms the double
opt-in from the email, and is then a suspect from paid search with the three views on its timeline, and the welcome
care model's first email has arrived."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Page, expect, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from designer.assets import EXAMPLES_DIR
from tests.fakes.serve import serving
from tests.fakes.smtp import Mailbox, smtp_server
from tests.test_designer_browser import ARTIFACTS, CHROMIUM_ARGS
from tests.test_up import Nurture, auth, wait_for


def sample_site(config: dict[str, str]) -> Starlette:
    """Acme's website: three pages with Nurture's tracker, the last with the guide form embedded."""
    pages = {"/": ("Acme: lead nurturing for B2B", '<a href="/features">See the features</a>'),
             "/features": ("Features", '<a href="/guide">Get the guide</a>'),
             "/guide": ("The guide", "{form}")}

    def page(request: Request) -> HTMLResponse:
        title, body = pages[request.url.path]
        return HTMLResponse(f"<!doctype html><html lang=en><head><title>{title}</title>{config['snippet']}</head>"
                            f"<body><main><h1>{title}</h1>{body.format(form=config.get('form', ''))}</main></body>"
                            "</html>")

    return Starlette(routes=[Route(path, page) for path in pages])


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Nurture, Mailbox, dict[str, str], str]]:
    config: dict[str, str] = {}
    with smtp_server() as (mailbox, port), serving(sample_site(config)) as site_url:
        connectors = tmp_path / "connectors.yaml"
        connectors.write_text(f"email: {{connector: smtp, host: 127.0.0.1, port: {port}, "
                              "from_address: 'Acme <hello@acme.test>'}\n")
        nurture = Nurture(tmp_path / "data")
        nurture.env |= {"NURTURE_CONNECTORS_FILE": str(connectors), "NURTURE_OUTBOUND_ALLOW": "127.0.0.1",
                        "NURTURE_PUBLIC_URL": nurture.url}
        proc = nurture.start()
        try:
            yield nurture, mailbox, config, site_url.replace("127.0.0.1", "localhost")  # another origin
        finally:
            nurture.stop(proc)


def welcome_model() -> dict[str, Any]:
    model = yaml.safe_load((EXAMPLES_DIR / "welcome-nurture.yaml").read_text())
    del model["settings"]["send_window"]  # weekdays 08:00 to 18:00 would hold the email outside office hours
    return model


def test_a_visitor_from_a_paid_ad_becomes_a_confirmed_suspect_and_gets_the_welcome_email(
        stack: tuple[Nurture, Mailbox, dict[str, str], str]) -> None:
    nurture, mailbox, config, site_url = stack
    api = httpx.Client(base_url=nurture.url, headers=auth(nurture.url), timeout=20)
    site = api.post("/api/sites", json={"id": "www", "name": "Acme", "origins": [site_url]})
    assert site.status_code == 201, site.text
    form = api.put("/api/forms/guide-download", json={
        "id": "guide-download", "site": "www", "name": "Get the guide", "double_opt_in": True,
        "fields": [{"name": "email"}, {"name": "first_name", "required": True}, {"name": "company"}],
        "consent_text": "Acme may email me about the guide and its products."})
    assert form.status_code == 200, form.text
    config |= {"snippet": site.json()["snippet"], "form": form.json()["embed"]}
    assert api.post("/api/care-models", json=welcome_model()).status_code == 201

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        visitor: Page = browser.new_page()
        visitor.goto(f"{site_url}/?utm_source=google&utm_medium=cpc&utm_campaign=guides")
        visitor.wait_for_function("() => window.nurture !== undefined")
        visitor.click("text=See the features")
        expect(visitor.locator("h1")).to_have_text("Features")
        visitor.click("text=Get the guide")
        expect(visitor.locator("h1")).to_have_text("The guide")
        expect(visitor.locator("input[name=nurture_visitor]")).not_to_have_value("")  # the tracker named the form
        visitor.fill("#nf-email", "Ada@Example.com")
        visitor.fill("#nf-first_name", "Ada")
        visitor.fill("#nf-company", "Lovelace Ltd")
        visitor.check("input[name=consent]")
        visitor.click("button[type=submit]")
        expect(visitor.locator("h1")).to_have_text("Check your email")
        assert api.get("/api/leads/ada@example.com").status_code == 404, "no lead before the address is confirmed"

        confirm = wait_for(lambda: mailbox.to("ada@example.com"))[0]  # type: ignore[index]
        link = re.search(r"http://\S+/f/confirm/\S+", confirm.get_body(("plain",)).get_content())
        assert link, "the confirmation email carries the link"
        visitor.goto(link.group(0))
        visitor.get_by_role("button", name="Confirm").click()
        expect(visitor.locator("h1")).to_have_text("You are confirmed")
        browser.close()

    lead = api.get("/api/leads/ada@example.com").json()
    assert (lead["stage"], lead["attributes"]["source"], lead["attributes"]["utm_campaign"],
            lead["attributes"]["company"]) == ("suspect", "paid search", "guides", "Lovelace Ltd")
    journey = api.get("/api/leads/ada@example.com/journey").json()
    views = [e["data"]["title"] for e in journey["events"] if e["type"] == "page.viewed"]
    assert views == ["Acme: lead nurturing for B2B", "Features", "The guide"]
    welcome = wait_for(lambda: [m for m in mailbox.to("ada@example.com") if m["Subject"] == "Your guide, Ada"])
    assert len(welcome) == 1  # type: ignore[arg-type]
    proof = api.get("/api/forms/guide-download/submissions").json()[0]
    assert (proof["consent_text"], proof["status"]) == ("Acme may email me about the guide and its products.",
                                                         "confirmed")
    assert proof["confirmed_at"] >= proof["at"]
