"""Channels and sales end to end: real SMTP on loopback, the real Temporal test server, the web app.

A lead's clicks on tracked links raise its score over the MQL threshold; that enrols it in the sales route,
whose handover reaches the rep's inbox and mailbox with a CRM task; the rep rejects it and the lead goes
back to nurture. Unsubscribe links and bounce reports stop later email."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import yaml

from connectors.base import ConnectorContext
from connectors.crm import BuiltinCrmConnector
from connectors.smtp import SmtpConnector
from designer.app import create_app
from nurture.settings import Settings
from store.sales import SalesStore
from tests.accounts import PASSWORD, csrf_of, make_user, sign_in
from tests.conftest import PUBLIC_URL, SECRET, Harness, harness_with
from tests.fakes.smtp import Mailbox, smtp_server
from tests.test_connectors import dsn
from workflows.care_model_run import CareModelRun

SCORING = {
    "engagement": [{"name": "clicked an email", "event": "email.clicked", "points": 20}],
    "half_life": "30d",
    "thresholds": [{"stage": "mql", "when": {"type": "score", "score": "total", "op": "gte", "value": 39}}],
}
NURTURE = """
id: nurture-track
name: Nurture track
start: guide
settings:
  exit_when: [{name: handed to sales, when: {type: stage, op: at_least, stages: [mql]}}]
steps:
  - {id: guide, kind: email, subject: "Your guide, {{ lead.first_name }}",
     body: '<p>Read <a href="https://acme.test/guide">the guide</a>.</p>', next: pause}
  - {id: pause, kind: wait, duration: 3d, next: tips}
  - {id: tips, kind: email, subject: Tips, body: "<p>Tips</p>"}
"""
SALES_ROUTE = """
id: sales-route
name: Sales route
start: to-sales
settings:
  entry: {event: lead.stage_changed, where: {to: mql}}
steps:
  - {id: to-sales, kind: handover, team: sales, routing: round_robin, sla: 2d,
     on_accepted: won, on_rejected: cool-off, on_expired: won}
  - {id: cool-off, kind: wait, duration: 1d, next: keep-in-touch}
  - {id: keep-in-touch, kind: email, subject: "We will keep you posted", body: "<p>Until later</p>"}
  - {id: won, kind: exit, reason: with sales}
"""


@pytest.fixture
async def world(env: Any, store: Any) -> AsyncIterator[tuple[Harness, httpx.AsyncClient, Mailbox]]:
    with smtp_server() as (mailbox, port):
        email = SmtpConnector(SmtpConnector.Config(port=port, from_address="Acme <hello@acme.test>",
                                                   inbound_secret="mta-token"))
        crm = BuiltinCrmConnector(context=ConnectorContext(store=store))
        async for nurture in harness_with(env, store, connectors={"email": email, "crm": crm}):
            settings = Settings(task_queue=nurture.queue, public_url=PUBLIC_URL, secret_key=SECRET.decode())
            app = create_app(settings, store=store, client=env.client)
            app.state.connectors = {"email": email}
            nurture.app = app  # type: ignore[attr-defined]  # for a second browser: another person signed in
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as api:
                await sign_in(api, store)
                yield nurture, api, mailbox


async def until(check: Callable[[], Any], seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.1)
    pytest.fail("waited in vain")


def html_of(mail: Any) -> str:
    return mail.get_body(preferencelist=("html",)).get_content()


async def test_clicks_raise_the_score_to_a_handover_the_rep_rejects_back_to_nurture(world: Any) -> None:
    nurture, api, mailbox = world
    ada = f"ada-{uuid.uuid4().hex[:6]}"
    address = f"{ada}@example.com"
    assert (await api.post("/api/scoring-model", json=SCORING)).json() == {"version": 1}
    for rep_id, name, manager in (("ana", "Ana", False), ("ben", "Ben", False), ("max", "Max", True)):
        rep = {"name": name, "email": f"{rep_id}@acme.test", "team": "sales", "manager": manager}
        assert (await api.put(f"/api/reps/{rep_id}", json=rep)).status_code == 200
    for doc in (NURTURE, SALES_ROUTE):
        assert (await api.post("/api/care-models", json=yaml.safe_load(doc))).status_code == 201
    await api.put(f"/api/leads/{ada}", json={"id": ada, "email": address, "stage": "prospect",
                                            "attributes": {"first_name": "Ada", "company": "Lovelace Labs"}})
    await api.post("/api/care-models/nurture-track/enrolments", json={"lead_id": ada})

    # The guide arrives as multipart mail with a tracked link and a one-click unsubscribe header.
    [guide] = await until(lambda: mailbox.to(address))
    assert guide["Subject"] == "Your guide, Ada"
    assert guide["List-Unsubscribe"].startswith(f"<{PUBLIC_URL}/u/")
    tracked = re.search(r'href="(http://nurture\.test/t/c/[^"]+)"', html_of(guide)).group(1)
    assert "(http://nurture.test/t/c/" in guide.get_body(preferencelist=("plain",)).get_content()

    # Two clicks: 40 points of engagement, over the MQL threshold.
    for _ in range(2):
        click = await api.get(tracked.removeprefix(PUBLIC_URL))
        assert (click.status_code, click.headers["location"]) == (302, "https://acme.test/guide")
    stages = (await api.get(f"/api/leads/{ada}/stages")).json()
    assert [(s["from_stage"], s["to_stage"]) for s in stages] == [("prospect", "mql")]
    assert stages[0]["reason"].startswith("threshold: total score ≥ 39: yes (40)")
    score = (await api.get(f"/api/leads/{ada}/score")).json()
    assert score["engagement"] == pytest.approx(40, abs=0.1)
    assert [c["rule"] for c in score["contributions"]] == ["clicked an email", "clicked an email"]

    # The sales route took the lead; the nurture track let go of it.
    nurture_run = nurture.env.client.get_workflow_handle_for(CareModelRun.run, f"nurture/nurture-track/{ada}")
    assert (await nurture.finish(nurture_run)).outcome == "exited:handed to sales"
    [notice] = await until(lambda: mailbox.to("ana@acme.test"))
    assert notice["Subject"] == f"New lead for you: {ada}"
    link = re.search(r'href="http://nurture\.test(/inbox/link/[^"]+)"', html_of(notice)).group(1)
    [task] = SalesStore(nurture.store).tasks(ada)
    assert task.owner == "ana" and "accept or reject by" in task.text

    # Ana follows the signed link in her email: one click signs her in to her own inbox, which shows the lead,
    # its score explained, and its journey. The link works once.
    make_user(nurture.store, "sales-rep", "ana@acme.test", rep_id="ana")
    transport = httpx.ASGITransport(app=nurture.app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as ana, \
            httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as ben:
        assert "Open my inbox" in (await ana.get(link)).text, "a GET (a mail scanner, say) does not use the link up"
        page = await ana.post(link, follow_redirects=True)
        assert page.url.path == "/inbox" and "Ana" in page.text
        ana.headers["X-CSRF-Token"] = csrf_of(page.text)
        assert ada in page.text and "clicked an email" in page.text and "prospect → mql" in page.text
        assert "nurture-track" in page.text
        key = re.search(r'action="/inbox/([^"]+)/decision"', page.text).group(1)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as again:
            assert (await again.post(link)).status_code == 400

        # Ben, another rep, sees none of it: not in his inbox, not the lead's page, and he cannot decide it.
        await sign_in(ben, nurture.store, "sales-rep", rep_id="ben")
        assert (await ben.get("/inbox")).text.count("data-lead=") == 0
        assert (await ben.get(f"/leads/{ada}")).status_code == 404
        assert (await ben.get(f"/api/leads/{ada}/score")).status_code == 404
        stolen = await ben.post(f"/api/handovers/{key}/decision", json={"decision": "accept"})
        assert stolen.status_code == 403 and "not routed to you" in stolen.text
        assert (await ana.get(f"/leads/{ada}")).status_code == 200, "Ana sees the journey of a lead handed to her"

        refused = await ana.post(f"/inbox/{key}/decision", data={"decision": "reject", "reason": ""})
        assert refused.status_code == 422 and 'id="inbox-error"' in refused.text and "needs a reason" in refused.text
        assert ada in refused.text, "the rep stays on the inbox, lead in view, with the problem said"
        rejected = await ana.post(f"/inbox/{key}/decision", data={"decision": "reject",
                                                                  "reason": "no budget until Q3"})
        assert rejected.status_code == 303

    route = nurture.env.client.get_workflow_handle_for(CareModelRun.run, f"nurture/sales-route/{ada}")
    assert (await nurture.finish(route)).outcome == "completed"
    assert ("to-sales", "rejected") in nurture.steps(nurture.lead(ada, email=address))
    [recycled] = await until(lambda: [m for m in mailbox.to(address) if m["Subject"] == "We will keep you posted"])
    assert recycled is not None
    history = [(s["to_stage"], s["reason"]) for s in (await api.get(f"/api/leads/{ada}/stages")).json()]
    assert history[-1] == ("prospect", "recycled by sales: no budget until Q3")
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as ana:
        page = await ana.post("/sign-in", data={"email": "ana@acme.test", "password": PASSWORD}, follow_redirects=True)
        assert page.url.path == "/inbox" and page.text.count("data-lead=") == 0


DRIP = """
id: drip-{tag}
name: Drip
start: one
steps:
  - {{id: one, kind: email, subject: One, body: "<p>One</p>", next: pause}}
  - {{id: pause, kind: wait, duration: 1d, next: two}}
  - {{id: two, kind: email, subject: Two, body: "<p>Two</p>"}}
"""


async def _first_mail(world: Any, tag: str) -> tuple[str, str, Any, Any]:
    nurture, api, mailbox = world
    lead = f"lead-{uuid.uuid4().hex[:6]}"
    address = f"{lead}@example.com"
    await api.post("/api/care-models", json=yaml.safe_load(DRIP.format(tag=tag)))
    await api.put(f"/api/leads/{lead}", json={"id": lead, "email": address})
    await api.post(f"/api/care-models/drip-{tag}/enrolments", json={"lead_id": lead})
    [first] = await until(lambda: mailbox.to(address))
    run = nurture.env.client.get_workflow_handle_for(CareModelRun.run, f"nurture/drip-{tag}/{lead}")
    return lead, address, first, run


async def test_one_click_unsubscribe_and_the_open_pixel(world: Any) -> None:
    nurture, api, mailbox = world
    lead, address, first, run = await _first_mail(world, "unsub")
    pixel = re.search(r'<img src="http://nurture\.test(/t/o/[^"]+)"', html_of(first)).group(1)
    assert (await api.get(pixel)).headers["content-type"] == "image/gif"
    link = first["List-Unsubscribe"].strip("<>").removeprefix(PUBLIC_URL)
    assert "Unsubscribe me" in (await api.get(link)).text, "a GET (a link scanner) only asks"
    assert "You are unsubscribed" in (await api.post(link, data={"List-Unsubscribe": "One-Click"})).text
    await nurture.finish(run)
    assert [m["Subject"] for m in mailbox.to(address)] == ["One"]
    two = next(o for o in nurture.store.outbox(lead) if o.step == "two")
    assert (two.status, two.reason) == ("skipped", "lead has unsubscribed")
    events = [e["type"] for e in (await api.get(f"/api/leads/{lead}/journey")).json()["events"]]
    assert events == ["email.opened", "lead.unsubscribed"]
    assert (await api.get("/t/c/forged.token")).status_code == 400


async def test_a_hard_bounce_report_stops_later_email(world: Any) -> None:
    nurture, api, mailbox = world
    lead, address, first, run = await _first_mail(world, "bounce")
    report = dsn(lead, first["Message-ID"])
    assert (await api.post("/api/inbound/email", content=report)).status_code == 401
    accepted = await api.post("/api/inbound/email", content=report, headers={"X-Nurture-Inbound-Token": "mta-token"})
    assert accepted.json() == {"accepted": 1, "new": 1, "pending": 0}
    await nurture.finish(run)
    assert [m["Subject"] for m in mailbox.to(address)] == ["One"]
    two = next(o for o in nurture.store.outbox(lead) if o.step == "two")
    assert (two.status, two.reason) == ("skipped", "email address bounced")


async def test_engagement_decays_on_schedule_and_running_models_hear_of_it(world: Any) -> None:
    from nurture.jobs import decay_scores

    nurture, api, _ = world
    await api.post("/api/scoring-model", json={**SCORING, "half_life": "10d", "thresholds": []})
    lead = f"lead-{uuid.uuid4().hex[:6]}"
    await api.put(f"/api/leads/{lead}", json={"id": lead, "email": f"{lead}@example.com"})
    await api.post("/api/events", json={"lead_id": lead, "type": "email.clicked", "at": 1_000_000.0})
    assert nurture.store.get_lead(lead).engagement == 20
    assert await decay_scores(nurture.store, nurture.env.client, now=1_000_000.0 + 10 * 86400) >= 1
    assert nurture.store.get_lead(lead).engagement == pytest.approx(10, abs=0.01)


ESCALATE = """
id: escalate
name: Escalate
start: to-sales
steps:
  - {id: to-sales, kind: handover, team: emea, routing: territory, sla: 1d}
"""


async def test_handover_routing_and_escalation_when_the_sla_passes(world: Any) -> None:
    nurture, api, mailbox = world
    for rep_id, territories, manager in (("uwe", ["DE", "AT"], False), ("fay", ["FR"], False),
                                         ("mia", [], True)):
        await api.put(f"/api/reps/{rep_id}", json={"name": rep_id, "email": f"{rep_id}@acme.test", "team": "emea",
                                                    "territories": territories, "manager": manager})
    await api.post("/api/care-models", json=yaml.safe_load(ESCALATE))
    lead = f"lead-{uuid.uuid4().hex[:6]}"
    await api.put(f"/api/leads/{lead}", json={"id": lead, "email": f"{lead}@example.com",
                                             "attributes": {"country": "FR"}})
    await api.post("/api/care-models/escalate/enrolments", json={"lead_id": lead})
    run = nurture.env.client.get_workflow_handle_for(CareModelRun.run, f"nurture/escalate/{lead}")
    await nurture.finish(run)
    [handover] = [h for h in nurture.store.handovers() if h.lead_id == lead]
    assert (handover.rep_id, handover.routed_by, handover.status) == ("fay", "territory FR", "expired")
    [escalation] = await until(lambda: mailbox.to("mia@acme.test"))
    assert escalation["Subject"] == f"Handover SLA missed: {lead}"
    assert mailbox.to("fay@acme.test"), "the rep was told when the handover opened"


def test_round_robin_and_account_owner_routing(store: Any) -> None:
    from store.tables import Lead, Rep

    sales = SalesStore(store)
    for rep_id in ("a", "b", "c"):
        sales.put_rep(Rep(id=rep_id, name=rep_id, email=f"{rep_id}@x.test", team="t"))
    picks = [sales.route("t", "round_robin", Lead(id="l"))[0].id for _ in range(4)]
    assert picks == ["a", "b", "c", "a"]
    assert sales.route("t", "account_owner", Lead(id="l", owner="c"))[0].id == "c"
    assert sales.route("t", "account_owner", Lead(id="l", owner="gone"))[1].startswith("round robin")
    assert sales.route("nobody", "round_robin", Lead(id="l")) == (None, "no active rep in team 'nobody'")


async def test_a_rate_limited_send_waits_for_its_slot_instead_of_failing(env: Any, store: Any) -> None:
    from connectors.ratelimit import RateLimitedConnector

    with smtp_server() as (mailbox, port):
        slow = RateLimitedConnector(SmtpConnector(SmtpConnector.Config(port=port, from_address="a@acme.test")), 30)
        async for nurture in harness_with(env, store, connectors={"email": slow}):
            version = nurture.publish(DRIP.format(tag="slow").replace("duration: 1d", "duration: 1s"))
            lead = nurture.lead(email="slow@example.com")
            _, run = await nurture.enrol(version, lead)
            await nurture.finish(run)
            assert [m["Subject"] for m in mailbox.to("slow@example.com")] == ["One", "Two"]
            retried = [e for e in await _history(run) if e.HasField("activity_task_started_event_attributes")
                       and e.activity_task_started_event_attributes.attempt > 1]
            assert retried, "the second email met the limit once and went out on a later attempt"


async def _history(handle: Any) -> list[Any]:
    return [event async for event in handle.fetch_history_events()]


async def test_a_threshold_can_enrol_the_lead_in_a_care_model(world: Any) -> None:
    _, api, mailbox = world
    await api.post("/api/care-models", json=yaml.safe_load(DRIP.format(tag="hot")))
    await api.post("/api/scoring-model", json={**SCORING, "thresholds": [
        {"stage": "mql", "when": {"type": "score", "score": "engagement", "op": "gte", "value": 20},
         "enrol": ["drip-hot"]}]})
    lead = f"lead-{uuid.uuid4().hex[:6]}"
    await api.put(f"/api/leads/{lead}", json={"id": lead, "email": f"{lead}@example.com"})
    result = (await api.post("/api/events", json={"lead_id": lead, "type": "email.clicked"})).json()
    assert result["staged"] == ["mql"] and f"nurture/drip-hot/{lead}" in result["enrolled"]
    await until(lambda: mailbox.to(f"{lead}@example.com"))
