"""Two leads found to be one person are merged: both histories kept, the profile combined, running care models
left coherent (no one in a care model twice, no event lost), and the old id still reaching the person."""

from __future__ import annotations

import uuid

import httpx

from engine.lead import LeadState
from tests.conftest import Harness


async def test_merging_keeps_both_histories_ends_the_duplicate_run_and_moves_the_other(
        designer: httpx.AsyncClient, nurture: Harness) -> None:
    tag = uuid.uuid4().hex[:6]
    drip = nurture.publish(f"""
        schema_version: 1
        id: drip-{tag}
        name: Drip
        start: pause
        steps:
          - {{id: pause, kind: wait, duration: 2d, next: hello}}
          - {{id: hello, kind: email, subject: "Hello {{{{ lead.first_name }}}}", body: Hi, next: end}}
          - {{id: end, kind: exit, reason: done}}
        """)
    only = nurture.publish(f"""
        schema_version: 1
        id: only-{tag}
        name: Only the other
        start: pause
        steps:
          - {{id: pause, kind: wait, duration: 1d, next: hello}}
          - {{id: hello, kind: email, subject: "For {{{{ lead.company }}}}", body: Hi, next: end}}
          - {{id: end, kind: exit, reason: done}}
        """)
    keep = nurture.lead(f"a-{tag}", email=f"a-{tag}@example.com", stage="prospect", fit=10,
                        attributes={"first_name": "Ada", "company": "Acme"})
    other = nurture.lead(f"b-{tag}", email=f"b-{tag}@example.com", stage="mql", fit=30,
                         attributes={"company": "Old name", "phone": "555"})
    await nurture.event(other, "page.viewed", {"url": "/pricing"})
    _, kept_run = await nurture.enrol(drip, keep)
    _, duplicate = await nurture.enrol(drip, other)
    _, moved = await nurture.enrol(only, other)

    merged = await designer.post(f"/api/leads/{keep.id}/merge", json={"other": other.id})
    assert merged.status_code == 200, merged.text
    assert (merged.json()["moved_runs"], merged.json()["duplicate_runs"]) == ([moved.id], [duplicate.id])
    lead = merged.json()["lead"]
    assert (lead["stage"], lead["fit"], lead["email"], lead["attributes"]) == (
        "mql", 30, keep.email, {"first_name": "Ada", "company": "Acme", "phone": "555"})
    assert nurture.store.get_lead(other.id) is None and nurture.store.resolve(other.id) == keep.id

    assert (await nurture.finish(duplicate)).outcome == f"merged into {keep.id}"
    await nurture.finish(moved)
    await nurture.finish(kept_run)
    sent = [(m.subject, m.to) for m in nurture.channel.sent if m.to in (keep.email, other.email)]
    assert sorted(sent) == [("For Acme", keep.email), ("Hello Ada", keep.email)], \
        "the duplicate sent nothing; the moved run wrote to the person under the kept profile"

    # The old id still reaches the person: an event, an upsert, a second enrolment.
    await nurture.event(LeadState(id=other.id), "email.clicked", {"url": "https://acme.test"})
    types = [e.type for e in nurture.store.timeline(keep.id)]
    assert types.count("page.viewed") == 1 and "lead.merged" in types and "email.clicked" in types
    await designer.put(f"/api/leads/{other.id}", json={"id": other.id, "attributes": {"size": "50"}})
    assert nurture.store.get_lead(other.id) is None
    assert (nurture.store.get_lead(keep.id) or LeadState(id="")).attributes["size"] == "50"
    assert sorted(e.care_model for e in nurture.store.enrolments(lead_id=keep.id)) == [
        f"drip-{tag}", f"drip-{tag}", f"only-{tag}"]
    again = await designer.post(f"/api/leads/{keep.id}/merge", json={"other": other.id})
    assert again.status_code == 422 and "are one lead already" in again.json()["detail"][0]["msg"]
    missing = await designer.post(f"/api/leads/{keep.id}/merge", json={"other": "nobody"})
    assert missing.status_code == 404 and "lead 'nobody' does not exist" in missing.json()["detail"]


async def test_the_lead_page_merges_a_lead_found_by_its_email(designer: httpx.AsyncClient, nurture: Harness) -> None:
    tag = uuid.uuid4().hex[:6]
    keep = nurture.lead(f"k-{tag}", email=f"k-{tag}@example.com")
    other = nurture.lead(f"o-{tag}", email=f"o-{tag}@example.com", attributes={"phone": "1"})
    page = await designer.get(f"/leads/{keep.id}")
    assert "Merge into this lead" in page.text
    done = await designer.post(f"/leads/{keep.id}/merge", data={"other": other.email.upper()})
    assert done.status_code == 303 and done.headers["location"] == f"/leads/{keep.id}"
    assert nurture.store.get_lead(other.id) is None
    assert (nurture.store.get_lead(keep.id) or keep).attributes == {"phone": "1"}
