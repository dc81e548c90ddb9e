"""Consent and mail that hold: an unsubscribe sticks through CRM re-syncs and retried sends, headers go out as the
RFCs write them, a slow server gets an email once, stage changes are events, and caps count only the lead's mail.

Real SMTP (aiosmtpd on loopback, raw bytes read), the real Temporal test server, the web app through ASGI."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import yaml

from connectors.base import ConnectorError, Message, Receipt
from connectors.smtp import SmtpConnector
from designer.app import create_app
from engine.lead import LeadState
from nurture.settings import Settings
from store.sales import SalesStore
from store.tables import Rep
from tests.accounts import sign_in
from tests.conftest import PUBLIC_URL, SECRET, Harness, harness_with
from tests.fakes.smtp import Mailbox, smtp_server
from tests.test_sales import until

DRIP = """
id: drip-{tag}
name: Drip
start: one
steps:
  - {id: one, kind: email, subject: One, body: "<p>One</p>", next: pause}
  - {id: pause, kind: wait, duration: 1d, next: two}
  - {id: two, kind: email, subject: Two, body: "<p>Two</p>", next: later}
  - {id: later, kind: wait, duration: 1d, next: three}
  - {id: three, kind: email, subject: Three, body: "<p>Three</p>"}
"""


@dataclass
class Flaky:
    """The SMTP connector behind a switch: while `down`, every send is refused before anything goes out."""

    inner: SmtpConnector
    down: bool = False
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    name: str = "smtp"

    @property
    def config(self) -> Any:
        return self.inner.config

    def send(self, message: Message) -> Receipt:
        with self.lock:
            if self.down:
                self.refused.append(message.key)
                raise ConnectorError("SMTP 127.0.0.1: ConnectionRefusedError")
        return self.inner.send(message)


@pytest.fixture
async def mail(env: Any, store: Any) -> AsyncIterator[tuple[Harness, httpx.AsyncClient, Mailbox, Flaky]]:
    with smtp_server() as (mailbox, port):
        smtp = SmtpConnector(SmtpConnector.Config(port=port, from_address="Acme <hello@acme.test>", timeout=1))
        flaky = Flaky(smtp)
        async for nurture in harness_with(env, store, connectors={"email": flaky}):
            settings = Settings(task_queue=nurture.queue, public_url=PUBLIC_URL, secret_key=SECRET.decode())
            app = create_app(settings, store=store, client=env.client)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as api:
                await sign_in(api, store)
                yield nurture, api, mailbox, flaky


def subjects(mailbox: Mailbox, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mailbox.to(address)]


async def put_lead(api: httpx.AsyncClient, lead_id: str, **fields: Any) -> httpx.Response:
    return await api.put(f"/api/leads/{lead_id}", json={"id": lead_id, **fields})


async def test_an_unsubscribe_sticks_through_a_crm_resync_and_a_retried_send(mail: Any) -> None:
    nurture, api, mailbox, flaky = mail
    lead, address = f"una-{uuid.uuid4().hex[:6]}", f"una-{uuid.uuid4().hex[:6]}@example.com"
    version = nurture.publish(DRIP.replace("{tag}", "consent"))
    assert (await put_lead(api, lead, email=address, stage="prospect", fit=30,
                           attributes={"company": "Acme", "plan": "team"})).status_code == 200
    _, run = await nurture.enrol(version, nurture.store.snapshot(lead))
    await until(lambda: subjects(mailbox, address) == ["One"])

    flaky.down = True  # email two is attempted, refused, and waits for its retry
    await nurture.days(1)
    await until(lambda: flaky.refused)
    [one] = mailbox.to(address)
    link = str(one["List-Unsubscribe"]).strip("<>").removeprefix(PUBLIC_URL)
    assert "You are unsubscribed" in (await api.post(link, data={"List-Unsubscribe": "One-Click"})).text

    # The CRM re-syncs the lead without an `unsubscribed` field: nothing it did not mention changes.
    resync = await put_lead(api, lead, email=address, attributes={"plan": "enterprise"})
    assert resync.status_code == 200
    row = resync.json()
    assert (row["unsubscribed"], row["stage"], row["fit"]) == (True, "prospect", 30)
    assert row["attributes"] == {"company": "Acme", "plan": "enterprise"}
    updates = [e.data for e in nurture.store.timeline(lead) if e.type == "lead.updated"]
    assert updates == [{"attributes": {"plan": "enterprise"}, "why": "set by PUT /api/leads"}], "only what changed"
    refused = await put_lead(api, lead, unsubscribed=False)
    assert refused.status_code == 409 and "resubscribe" in refused.json()["detail"]

    flaky.down = False
    await nurture.finish(run)
    assert subjects(mailbox, address) == ["One"], "no email after the unsubscribe, retried or not"
    outcomes = {o.step: (o.status, o.reason) for o in nurture.store.outbox(lead)}
    assert outcomes["two"] == ("skipped", "lead has unsubscribed")
    assert outcomes["three"] == ("skipped", "lead has unsubscribed")


async def test_resubscribing_is_explicit_recorded_and_a_later_unsubscribe_sticks_again(mail: Any) -> None:
    nurture, api, mailbox, _ = mail
    lead, address = f"ren-{uuid.uuid4().hex[:6]}", f"ren-{uuid.uuid4().hex[:6]}@example.com"
    version = nurture.publish(DRIP.replace("{tag}", "resub"))
    await put_lead(api, lead, email=address)
    _, run = await nurture.enrol(version, nurture.store.snapshot(lead))
    await until(lambda: subjects(mailbox, address) == ["One"])
    link = str(mailbox.to(address)[0]["List-Unsubscribe"]).strip("<>").removeprefix(PUBLIC_URL)
    await api.post(link)
    assert (await api.post(f"/api/leads/{lead}/resubscribe", json={"reason": "asked us by phone"})).json()[
        "unsubscribed"] is False
    await api.post(link)  # the same link again: a new act, not a duplicate to drop
    await nurture.finish(run)
    assert subjects(mailbox, address) == ["One"]
    timeline = [(e.type, e.data.get("reason")) for e in nurture.store.timeline(lead)]
    assert timeline == [("lead.unsubscribed", None), ("lead.resubscribed", "asked us by phone"),
                        ("lead.unsubscribed", None)]


async def test_headers_go_out_as_the_rfcs_write_them_to_one_recipient(mail: Any) -> None:
    nurture, api, mailbox, _ = mail
    lead, address = f"hdr-{uuid.uuid4().hex[:6]}", f"hdr-{uuid.uuid4().hex[:6]}@example.com"
    await put_lead(api, lead, email=address)
    version = nurture.publish(DRIP.replace("{tag}", "headers"))
    await nurture.enrol(version, nurture.store.snapshot(lead))
    await until(lambda: mailbox.raw)
    [(recipients, raw)] = [r for r in mailbox.raw if address in r[0]]
    head = raw.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    assert recipients == [address]
    [unsubscribe] = [line for line in head if line.startswith("List-Unsubscribe:")]
    assert re.fullmatch(rf"List-Unsubscribe: <{re.escape(PUBLIC_URL)}/u/[\w.=-]+>", unsubscribe), "one line, verbatim"
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in head
    assert [d for d in head if re.fullmatch(r"Date: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", d)], head
    assert not [line for line in head if "=?utf-8?" in line.lower()]

    many = await put_lead(api, f"list-{lead}", email="a@x.test, b@y.test, c@z.test")
    assert many.status_code == 422 and "email" in many.text, "a list is not one address"
    nurture.store.upsert_lead(LeadState(id=f"old-{lead}", email="a@x.test, b@y.test"))  # stored before the check
    _, run = await nurture.enrol(version, nurture.store.snapshot(f"old-{lead}"))
    await nurture.finish(run)
    assert not [r for r in mailbox.raw if "a@x.test" in r[0] or "b@y.test" in r[0]]
    [one] = [o for o in nurture.store.outbox(f"old-{lead}") if o.step == "one"]
    assert one.status == "failed" and "no single valid email address" in one.reason


async def test_a_slow_mail_server_gets_the_email_once_and_the_delivery_says_uncertain(mail: Any) -> None:
    nurture, api, mailbox, _ = mail
    mailbox.reply_after = 2.5  # the connector waits 1 s for the answer to DATA
    lead, address = f"slow-{uuid.uuid4().hex[:6]}", f"slow-{uuid.uuid4().hex[:6]}@example.com"
    await put_lead(api, lead, email=address)
    model = yaml.safe_load(DRIP.replace("{tag}", "slow"))
    model["steps"] = [{**model["steps"][0], "next": None}]
    await api.post("/api/care-models", json=model)
    _, run = await nurture.enrol(nurture.store.latest("drip-slow"), nurture.store.snapshot(lead))
    await nurture.finish(run)
    mailbox.reply_after = 0
    assert subjects(mailbox, address) == ["One"], "sent once, not once per retry"
    [one] = nurture.store.outbox(lead)
    assert one.status == "uncertain" and "may have reached the provider" in one.reason
    assert ("one", "uncertain") in nurture.steps(nurture.store.snapshot(lead))


HANDED = """
id: hand-{tag}
name: Handover then branch on stage
start: to-sales
settings:
  frequency_cap: {max: 2, per: 7d}
steps:
  - {id: to-sales, kind: handover, team: team-{tag}, sla: 2d, on_accepted: check, on_rejected: check,
     on_expired: check}
  - id: check
    kind: branch
    cases:
      - {label: is-sal, when: {type: stage, op: in, stages: [sal]}, next: welcome}
      - {label: is-prospect, when: {type: stage, op: in, stages: [prospect]}, next: welcome}
    default: welcome
  - {id: welcome, kind: email, subject: Welcome, body: "<p>Hi</p>"}
"""
ON_SAL = """
id: on-sal-{tag}
name: Starts when sales accepts
start: hello
settings:
  entry: {event: lead.stage_changed, where: {to: sal}}
steps:
  - {id: hello, kind: email, subject: "Meet your rep", body: "<p>Hi</p>"}
"""


@pytest.mark.parametrize("decision", ["accept", "reject"])
async def test_sales_decisions_move_the_runs_copy_of_the_lead_and_are_stage_change_events(
        mail: Any, decision: str) -> None:
    nurture, api, mailbox, _ = mail
    tag = uuid.uuid4().hex[:6]
    SalesStore(nurture.store).put_rep(Rep(id=f"rep-{tag}", name="Rae", email=f"rep-{tag}@acme.test",
                                          team=f"team-{tag}"))
    version = nurture.publish(HANDED.replace("{tag}", tag))
    nurture.publish(ON_SAL.replace("{tag}", tag))
    lead, address = f"sd-{tag}", f"sd-{tag}@example.com"
    await put_lead(api, lead, email=address, stage="mql")
    _, run = await nurture.enrol(version, nurture.store.snapshot(lead))
    [handover] = await until(lambda: [h for h in nurture.store.handovers("open") if h.lead_id == lead])
    answer = await api.post(f"/api/handovers/{handover.key}/decision",
                            json={"decision": decision, "reason": "not now" if decision == "reject" else ""})
    assert answer.status_code == 200
    await nurture.finish(run)

    took = dict(nurture.steps(nurture.store.snapshot(lead)))["check"]
    expected = "sal" if decision == "accept" else "prospect"
    assert took == f"took 'is-{expected}'", "the branch right after the handover sees the new stage"
    changed = [e.data for e in nurture.store.timeline(lead) if e.type == "lead.stage_changed"]
    assert [(c["from"], c["to"]) for c in changed] == [("mql", expected)]
    history = [(c.from_stage, c.to_stage) for c in SalesStore(nurture.store).stage_history(lead)]
    assert history[-1] == ("mql", expected)
    # A care model listening for {to: sal} starts only when sales accepted.
    assert (subjects(mailbox, address).count("Meet your rep") == 1) == (decision == "accept")
    # The rep's notification did not use up the lead's cap of two emails a week ("Meet your rep" used one).
    assert "Welcome" in subjects(mailbox, address)
    assert mailbox.to(f"rep-{tag}@acme.test"), "the rep was emailed"


async def test_a_crm_stage_update_is_recorded_in_the_history_and_raised_as_an_event(mail: Any) -> None:
    nurture, api, _, _ = mail
    lead = f"crm-{uuid.uuid4().hex[:6]}"
    await put_lead(api, lead, email=f"{lead}@example.com", stage="mql")
    assert (await put_lead(api, lead, stage="prospect")).json()["stage"] == "prospect"  # backwards, from the CRM
    history = [(c.from_stage, c.to_stage, c.reason) for c in SalesStore(nurture.store).stage_history(lead)]
    assert history == [("mql", "prospect", "set by PUT /api/leads")]
    changed = [e.data["to"] for e in nurture.store.timeline(lead) if e.type == "lead.stage_changed"]
    assert changed == ["prospect"]
