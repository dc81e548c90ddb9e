"""Privacy requests end to end: export everything held on a lead, erase it (runs ended, no email after, journey kept
only under a pseudonym), and a re-import of the address is never emailed. Real SMTP, real Temporal test server."""

from __future__ import annotations

import uuid
from typing import Any

import yaml

from store.audit import Audit
from store.privacy import pseudonym
from tests.test_consent import DRIP, mail, subjects  # noqa: F401  (mail: the fixture)
from tests.test_sales import until


async def test_export_then_erase_ends_runs_sends_nothing_more_and_suppresses_a_reimport(mail: Any) -> None:  # noqa: F811
    nurture, api, mailbox, _ = mail
    tag, lead = uuid.uuid4().hex[:6], f"lead-{uuid.uuid4().hex[:6]}"
    address = f"{lead}@example.com"
    assert (await api.post("/api/care-models", json=yaml.safe_load(DRIP.replace("{tag}", tag)))).status_code == 201
    await api.put(f"/api/leads/{lead}", json={"id": lead, "email": address, "attributes": {"first_name": "Eve"}})
    await api.post(f"/api/care-models/drip-{tag}/enrolments", json={"lead_id": lead})
    await until(lambda: subjects(mailbox, address) == ["One"])
    await api.post("/api/events", json={"lead_id": lead, "type": "page.visited", "data": {"url": "/pricing"}})

    page = (await api.get(f"/leads/{lead}")).text
    assert f"<title>{lead} — Nurture</title>" in page and page.count('id="privacy"') == 1
    assert "Erase this lead" in page and f'href="/leads/{lead}/export.json"' in page
    exported = (await api.get(f"/api/leads/{lead}/export")).json()
    assert exported["lead"]["email"] == address and exported["lead"]["attributes"] == {"first_name": "Eve"}
    assert [e["type"] for e in exported["events"]] == ["page.visited"]
    assert [d["step"] for d in exported["deliveries"]] == ["one"] and exported["enrolments"][0]["status"] == "running"
    assert {"journey", "scores", "stages", "handovers", "crm_tasks", "crm_notes", "pending"} <= set(exported)

    erased = await api.delete(f"/api/leads/{lead}")
    assert erased.status_code == 200 and erased.json()["rows"]["runs_ended"] == 1
    await nurture.days(3)
    assert subjects(mailbox, address) == ["One"], "no email after the erasure, though the drip had two more"

    store, alias = nurture.store, pseudonym(lead)
    assert store.get_lead(lead) is None and store.timeline(lead) == [] and store.outbox(lead) == []
    kept = store.journey(lead_id=alias)
    assert kept and all(j.why in ("", "(erased)") for j in kept), "the journey's shape stays for the numbers"
    assert all(lead not in d.key and d.payload == {} for d in store.outbox(alias))
    assert (await api.get(f"/api/leads/{lead}/export")).status_code == 404
    [entry] = Audit(store).find(action="privacy.erased")
    assert entry.object == f"lead:{alias}" and lead not in str(entry.detail), "the log keeps no personal data"

    # A click on an old email records nothing; the address imported again under a new id is never emailed.
    assert (await api.post("/api/events", json={"lead_id": lead, "type": "email.clicked"})).json()["new"] is False
    assert store.get_lead(lead) is None
    again = f"{lead}-again"
    reimported = (await api.put(f"/api/leads/{again}", json={"id": again, "email": address.upper()})).json()
    assert reimported["unsubscribed"] is True
    await api.post(f"/api/leads/{again}/resubscribe", json={"reason": "they asked us to, on the phone"})
    await api.post(f"/api/care-models/drip-{tag}/enrolments", json={"lead_id": again})
    await until(lambda: store.outbox(again))
    [refused] = store.outbox(again)
    assert refused.status == "skipped" and refused.reason == "the address belongs to an erased lead"
    assert subjects(mailbox, address) == ["One"]
