"""Visitors become leads: the tracker's page views are taken only from the site's origins with its key, honour
Do-Not-Track and consent, and are rate limited; a form names the visitor, who becomes a suspect with its views on
its timeline and its source from how it first arrived, and starts the care models that listen for the form."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from designer.app import create_app
from engine.sources import classify, utm_of
from engine.validator import load_or_raise
from nurture.settings import Settings
from store.website import Website
from tests.accounts import sign_in
from tests.conftest import Harness
from tests.fakes.smtp import Mailbox, smtp_server

ORIGIN = "https://www.acme.test"
LANDING = f"{ORIGIN}/pricing?utm_source=google&utm_medium=cpc&utm_campaign=q4-guides"


def test_a_visit_is_classified_by_its_utm_medium_first_then_by_its_referrer() -> None:
    cases = [
        ({"utm_medium": "cpc"}, "https://www.google.com/", "paid search"),
        ({"utm_medium": "paid-social"}, "", "paid social"),
        ({"utm_medium": "display"}, "", "paid"),
        ({"utm_medium": "newsletter"}, "", "email"),
        ({}, "https://www.google.de/search?q=nurture", "organic search"),
        ({}, "https://duckduckgo.com/", "organic search"),
        ({}, "https://mail.google.com/mail/u/0/", "email"),
        ({}, "https://www.linkedin.com/feed/", "social"),
        ({}, "https://news.example.org/story", "referral"),
        ({}, "https://www.acme.test/blog", "direct"),
        ({}, "", "direct"),
    ]
    assert [classify(utm, referrer, "www.acme.test").name for utm, referrer, _ in cases] == [c[2] for c in cases]
    assert classify({"utm_medium": "cpc"}, "").why == "utm_medium=cpc marks a paid search ad"
    assert utm_of(LANDING) == {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "q4-guides"}


def welcome(form: str, tag: str) -> dict[str, object]:
    return {"schema_version": 1, "id": f"welcome-{tag}", "name": "Welcome", "start": "hello",
            "settings": {"entry": {"event": "form.submitted", "where": {"form": form}}},
            "steps": [{"id": "hello", "kind": "email", "subject": "Your guide, {{ lead.first_name }}", "body": "Hi",
                       "next": "end"},
                      {"id": "end", "kind": "exit", "reason": "welcomed"}]}


@pytest.fixture
async def smtp_app(nurture: Harness, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Mailbox, Settings]]:
    """The web app with email through a real SMTP server (the confirmation emails go there), signed in."""
    with smtp_server() as (mailbox, port):
        config = tmp_path / "connectors.yaml"
        config.write_text(f"email: {{connector: smtp, host: 127.0.0.1, port: {port}, "
                          "from_address: 'Acme <hello@acme.test>'}\n")
        settings = Settings(data_dir=tmp_path, task_queue=nurture.queue, connectors_file=config,
                            outbound_allow="127.0.0.1", public_url="http://nurture.test", tracker_per_minute=60,
                            forms_per_minute=3)
        app = create_app(settings, store=nurture.store, client=nurture.env.client)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nurture.test") as c:
            await sign_in(c, nurture.store, role="marketer")
            yield c, mailbox, settings


async def site_and_form(api: httpx.AsyncClient, tag: str, **form: object) -> tuple[str, str]:
    site = await api.post("/api/sites", json={"id": f"www-{tag}", "name": "Acme", "origins": [f"{ORIGIN}/"]})
    assert site.status_code == 201, site.text
    assert site.json()["origins"] == [ORIGIN]
    assert f'data-site="{site.json()["key"]}"' in site.json()["snippet"]
    spec = {"id": f"guide-{tag}", "site": f"www-{tag}", "name": "Get the guide",
            "fields": [{"name": "email"}, {"name": "first_name", "required": True}, {"name": "company"}],
            "consent_text": "I agree to receive emails from Acme about its products.", **form}
    saved = await api.put(f"/api/forms/guide-{tag}", json=spec)
    assert saved.status_code == 200, saved.text
    assert 'data-nurture-form' in saved.json()["embed"] and 'name="website"' in saved.json()["embed"]
    return site.json()["key"], f"guide-{tag}"


def beacon(key: str, visitor: str, url: str, referrer: str = "") -> str:
    return json.dumps({"k": key, "v": visitor, "i": uuid.uuid4().hex, "u": url, "t": url.split("/")[-1],
                       "r": referrer, "c": True})


async def test_a_visitor_from_a_paid_ad_sends_the_form_and_is_a_suspect_with_its_views_and_its_first_email(
        smtp_app: tuple[httpx.AsyncClient, Mailbox, Settings], nurture: Harness) -> None:
    api, mailbox, _ = smtp_app
    tag = uuid.uuid4().hex[:6]
    key, form = await site_and_form(api, tag)
    assert (await api.post("/api/care-models", json=welcome(form, tag))).status_code == 403  # a marketer drafts only
    nurture.store.publish(load_or_raise(json.dumps(welcome(form, tag))))
    visitor = uuid.uuid4().hex
    pages = [LANDING, f"{ORIGIN}/features", f"{ORIGIN}/guide"]
    for n, url in enumerate(pages):
        sent = await api.post("/t/hit", content=beacon(key, visitor, url, pages[n - 1] if n else ""),
                              headers={"origin": ORIGIN, "content-type": "text/plain"})
        assert sent.status_code == 204, sent.text
        assert sent.headers["access-control-allow-origin"] == ORIGIN
    email = f"ada-{tag}@example.com"
    sent = await api.post(f"/f/{form}", data={"email": email.upper(), "first_name": "Ada", "consent": "yes",
                                              "nurture_visitor": visitor, "website": ""},
                          headers={"origin": ORIGIN})
    assert sent.status_code == 200 and "Thank you." in sent.text
    lead = nurture.store.get_lead(email)
    assert lead is not None and lead.email == email and lead.stage == "suspect"
    assert (lead.attributes["source"], lead.attributes["utm_medium"], lead.attributes["first_name"]) == (
        "paid search", "cpc", "Ada")
    timeline = [(e.type, e.data.get("url")) for e in nurture.store.timeline(email) if e.type != "lead.updated"]
    assert timeline[:3] == [("page.viewed", url) for url in pages]
    submitted = [e for e in nurture.store.timeline(email) if e.type == "form.submitted"]
    assert submitted[0].data["consent"] == "I agree to receive emails from Acme about its products."
    [run] = nurture.store.enrolments(lead_id=email)
    assert await nurture.finish(nurture.env.client.get_workflow_handle(run.workflow_id))
    assert [m.subject for m in nurture.channel.to(email)] == ["Your guide, Ada"]
    assert not mailbox.messages, "no double opt-in on this form: no confirmation email"
    # Views after the form go straight onto the lead's timeline.
    await api.post("/t/hit", content=beacon(key, visitor, f"{ORIGIN}/pricing"), headers={"origin": ORIGIN})
    assert [e.type for e in nurture.store.timeline(email)].count("page.viewed") == 4


async def test_the_tracker_takes_views_only_from_the_sites_origins_and_honours_do_not_track(
        smtp_app: tuple[httpx.AsyncClient, Mailbox, Settings], nurture: Harness) -> None:
    api, _, _ = smtp_app
    tag = uuid.uuid4().hex[:6]
    key, _ = await site_and_form(api, tag)
    visitor = uuid.uuid4().hex
    elsewhere = await api.post("/t/hit", content=beacon(key, visitor, LANDING), headers={"origin": "https://evil.test"})
    assert elsewhere.status_code == 403 and "https://evil.test is not one of the origins" in elsewhere.json()["detail"]
    unknown = await api.post("/t/hit", content=beacon("nsk_nope", visitor, LANDING), headers={"origin": ORIGIN})
    assert unknown.status_code == 403 and "unknown site key" in unknown.json()["detail"]
    junk = await api.post("/t/hit", content="<html>", headers={"origin": ORIGIN})
    assert junk.status_code == 400
    for header in ({"dnt": "1"}, {"sec-gpc": "1"}):
        quiet = await api.post("/t/hit", content=beacon(key, visitor, LANDING), headers={"origin": ORIGIN, **header})
        assert quiet.status_code == 204
    web = Website(nurture.store)
    assert web.visitor(f"www-{tag}:{visitor}") is None, "Do-Not-Track and GPC: nothing kept"
    answers = [(await api.post("/t/hit", content=beacon(key, visitor, LANDING), headers={"origin": ORIGIN}))
               .status_code for _ in range(20)]
    assert answers[:15] == [204] * 15 and 429 in answers, "60 a minute with a burst of 15, per site and address"
    assert len(web.views(f"www-{tag}:{visitor}")) == answers.count(204)


async def test_a_form_names_each_bad_field_drops_bots_and_limits_each_address(
        smtp_app: tuple[httpx.AsyncClient, Mailbox, Settings], nurture: Harness) -> None:
    api, _, _ = smtp_app
    tag = uuid.uuid4().hex[:6]
    _, form = await site_and_form(api, tag)
    bad = await api.post(f"/f/{form}", json={"email": "not-an-address", "company": "Acme"},
                         headers={"origin": ORIGIN})
    assert bad.status_code == 422 and bad.json()["problems"] == {
        "email": "'not-an-address' is not an email address", "first_name": "First name is required",
        "consent": "tick the box to agree, or we cannot keep your details"}
    page = await api.post(f"/f/{form}", data={"email": "x@example.com"})
    assert page.status_code == 422 and 'aria-invalid="true"' in page.text and "First name is required" in page.text
    bot = await api.post(f"/f/{form}", json={"email": "bot@example.com", "first_name": "B", "consent": "yes",
                                             "website": "http://spam.test"}, headers={"origin": ORIGIN})
    assert bot.json()["status"] == "received" and nurture.store.get_lead("bot@example.com") is None
    foreign = await api.post(f"/f/{form}", json={"email": "z@example.com"}, headers={"origin": "https://evil.test"})
    assert foreign.status_code == 403
    assert (await api.post(f"/f/{form}", json={"email": "z@example.com", "first_name": "Z", "consent": "yes"},
                           headers={"origin": ORIGIN})).json()["status"] == "received"
    assert (await api.post(f"/f/{form}", json={"email": "y@example.com", "first_name": "Y", "consent": "yes"},
                           headers={"origin": ORIGIN})).status_code == 429, "3 a minute per address (after the 422s)"
    [kept] = Website(nurture.store).submissions(form_id=form)
    assert (kept.email, kept.consented, kept.consent_text[:8], kept.status) == ("z@example.com", True, "I agree ",
                                                                                "confirmed")


async def test_double_opt_in_waits_for_the_emailed_link_and_a_second_click_changes_nothing(
        smtp_app: tuple[httpx.AsyncClient, Mailbox, Settings], nurture: Harness) -> None:
    api, mailbox, _ = smtp_app
    tag = uuid.uuid4().hex[:6]
    _, form = await site_and_form(api, tag, double_opt_in=True)
    email = f"bo-{tag}@example.com"
    sent = await api.post(f"/f/{form}", data={"email": email, "first_name": "Bo", "consent": "yes"},
                          headers={"origin": ORIGIN})
    assert sent.status_code == 200 and "Check your email" in sent.text
    assert nurture.store.get_lead(email) is None, "not a lead before the address is confirmed"
    [message] = mailbox.to(email)
    link = next(line for line in message.get_body(("plain",)).get_content().split() if "/f/confirm/" in line)
    path = link.removeprefix("http://nurture.test")
    page = await api.get(path)
    assert "Confirm your email address" in page.text and nurture.store.get_lead(email) is None, \
        "opening the link (as a mail scanner would) confirms nothing"
    done = await api.post(path)
    assert done.status_code == 200 and "You are confirmed" in done.text
    assert (await api.post(path)).status_code == 200
    lead = nurture.store.get_lead(email)
    assert lead is not None and lead.stage == "suspect"
    assert [e.type for e in nurture.store.timeline(email)].count("form.submitted") == 1
    forged = await api.get(path[:-3] + "abc")
    assert forged.status_code == 400
    mailbox.refuse.add(f"no-{tag}@example.com")
    refused = await api.post(f"/f/{form}", data={"email": f"no-{tag}@example.com", "first_name": "No",
                                                 "consent": "yes"}, headers={"origin": ORIGIN})
    assert refused.status_code == 422 and f"we could not email no-{tag}@example.com" in refused.text
