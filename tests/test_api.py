"""The JSON API as an integrator uses it: publish, add leads, enrol, send events, ask where a lead is."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from designer.app import create_app
from nurture.settings import Settings
from tests.accounts import sign_in
from tests.conftest import Harness

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
async def api(nurture: Harness, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(data_dir=tmp_path, task_queue=nurture.queue)
    app = create_app(settings, store=nurture.store, client=nurture.env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nurture") as client:
        await sign_in(client, nurture.store)
        yield client


def example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


async def test_publishing_validates_and_versions(api: httpx.AsyncClient) -> None:
    doc = example("welcome-nurture.yaml")
    broken = {**doc, "steps": [{**doc["steps"][0], "next": "nowhere"}, *doc["steps"][1:]]}
    refused = await api.post("/api/care-models", json=broken)
    assert refused.status_code == 422
    assert {"message": "points to unknown step 'nowhere'", "step": "welcome", "field": "next", "line": None} in \
        refused.json()["problems"]

    first = await api.post("/api/care-models", json=doc)
    same = await api.post("/api/care-models", json=doc)
    doc["steps"][1]["duration"] = "3d"
    changed = await api.post("/api/care-models", json=doc)
    assert (first.status_code, first.json()["version"]) == (201, 1)
    assert same.json() == first.json(), "publishing an unchanged document makes no new version"
    assert changed.json()["version"] == 2
    listed = (await api.get("/api/care-models")).json()
    assert [(m["care_model"], m["version"]) for m in listed] == [("welcome-nurture", 2)]


async def test_enrol_events_where_and_journey(api: httpx.AsyncClient, nurture: Harness) -> None:
    await api.post("/api/care-models", json=example("customer-cross-sell.yaml"))
    alan = f"alan-{uuid.uuid4().hex[:8]}"  # workflow ids outlive a test's database on the shared test server
    lead = {"id": alan, "email": "alan@acme.test", "timezone": "Europe/London", "stage": "customer",
            "attributes": {"plan": "team", "first_name": "Alan"}}
    assert (await api.put(f"/api/leads/{alan}", json=lead)).status_code == 200

    enrolled = await api.post("/api/care-models/customer-cross-sell/enrolments", json={"lead_id": alan})
    assert enrolled.json() == {"status": "started", "workflow_id": f"nurture/customer-cross-sell/{alan}",
                               "reason": ""}
    again = await api.post("/api/care-models/customer-cross-sell/enrolments", json={"lead_id": alan})
    assert again.json()["status"] == "not_eligible"

    await nurture.days(5)
    where = (await api.get(f"/api/leads/{alan}/where")).json()
    assert [(w["care_model"], w["step"], w["state"]) for w in where] == [
        ("customer-cross-sell", "await-pricing", "waiting_for_event")]

    event = {"id": "evt-1", "lead_id": alan, "type": "page.visited", "data": {"page": "/pricing/analytics"}}
    first = (await api.post("/api/events", json=event)).json()
    second = (await api.post("/api/events", json=event)).json()
    assert first["new"] and first["signalled"] == [f"nurture/customer-cross-sell/{alan}"]
    assert not second["new"]
    await nurture.days(1)
    where = (await api.get(f"/api/leads/{alan}/where")).json()
    assert [(w["step"], w["state"]) for w in where] == [("to-owner", "awaiting_sales")]

    journey = (await api.get(f"/api/leads/{alan}/journey")).json()
    assert [e["type"] for e in journey["events"]] == ["page.visited"]
    assert [s["step"] for s in journey["steps"]][:2] == ["tag", "announce"]
    assert {d["channel"] for d in journey["deliveries"]} == {"crm", "email", "webhook"}


async def test_clear_errors_for_unknown_things(api: httpx.AsyncClient) -> None:
    missing = await api.post("/api/care-models/nope/enrolments", json={"lead_id": "x"})
    assert missing.status_code == 404 and "care model 'nope' is not published" in missing.json()["detail"]
    bad_lead = await api.put("/api/leads/x", json={"id": "x", "timezone": "Nowhere/City"})
    assert bad_lead.status_code == 422 and "unknown time zone 'Nowhere/City'" in bad_lead.text
    mismatch = await api.put("/api/leads/x", json={"id": "y"})
    assert mismatch.status_code == 422 and "does not match" in mismatch.text


async def test_healthz_reports_database_and_temporal(api: httpx.AsyncClient, nurture: Harness,
                                                     tmp_path: Path) -> None:
    healthy = await api.get("/healthz")
    assert healthy.status_code == 200 and healthy.json() == {"status": "ok", "db": "ok", "temporal": "ok"}
    settings = Settings(data_dir=tmp_path, temporal_address="127.0.0.1:9")
    app = create_app(settings, store=nurture.store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as client:
        down = await client.get("/healthz")
        ready, alive = await client.get("/readyz"), await client.get("/livez")
    assert down.status_code == 503 and ready.status_code == 503
    assert down.json()["db"] == "ok" and "Temporal is not reachable at 127.0.0.1:9" in down.json()["temporal"]
    assert alive.status_code == 200, "a process whose Temporal is away is alive: restarting it would not help"


async def test_home_page_lists_published_models(api: httpx.AsyncClient) -> None:
    await api.post("/api/care-models", json=example("executive-nurture.yaml"))
    page = await api.get("/", follow_redirects=True)
    assert page.status_code == 200 and "executive-nurture" in page.text and "Executive persona nurture" in page.text
    assert "v1" in page.text


async def test_batches_of_events_and_leads_take_each_item_on_its_own(api: httpx.AsyncClient, nurture: Harness
                                                                     ) -> None:
    tag = uuid.uuid4().hex[:8]
    entry = {"schema_version": 1, "id": f"signup-{tag}", "name": "Sign-up", "start": "end",
             "settings": {"entry": {"event": "form.submitted", "where": {"form": "webinar-interest"}}},
             "steps": [{"id": "end", "kind": "exit", "reason": "signed up"}]}
    assert (await api.post("/api/care-models", json=entry)).status_code == 201
    ada, bob = f"ada-{tag}", f"bob-{tag}"
    leads = (await api.post("/api/leads/batch", json=[
        {"id": ada, "email": "ada@acme.test", "stage": "prospect"},
        {"id": bob, "email": "not an address"},
        {"id": ada, "attributes": {"company": "Acme"}},
        {"id": ada, "attributes": {"company": "Acme"}},
        {"email": "no-id@acme.test"},
    ])).json()
    assert [(r["id"], r["status"]) for r in leads["results"]] == [
        (ada, "created"), (bob, "rejected"), (ada, "updated"), (ada, "unchanged"), (None, "rejected")]
    assert leads["results"][1]["error"].startswith("email:") and leads["results"][4]["error"] == "id: Field required"
    assert leads["counts"] == {"created": 1, "rejected": 2, "updated": 1, "unchanged": 1}
    assert nurture.store.get_lead(bob) is None and nurture.store.get_lead(ada).attributes == {"company": "Acme"}

    signup = {"id": f"e1-{tag}", "lead_id": ada, "type": "form.submitted", "data": {"form": "webinar-interest"}}
    events = (await api.post("/api/events", json=[
        signup,
        {"id": f"e2-{tag}", "type": "email.clicked"},
        {"id": f"e3-{tag}", "lead_id": ada, "type": "page.visited", "data": {"page": "/pricing"}},
        signup,
    ])).json()
    assert [(r["id"], r["status"]) for r in events["results"]] == [
        (f"e1-{tag}", "accepted"), (f"e2-{tag}", "rejected"), (f"e3-{tag}", "accepted"), (f"e1-{tag}", "duplicate")]
    assert events["results"][0]["enrolled"] == [f"nurture/signup-{tag}/{ada}"]  # the entry rule started it
    # The run ends before the test does: a workflow task left behind on the shared test server stops its clock.
    await nurture.finish(nurture.env.client.get_workflow_handle(f"nurture/signup-{tag}/{ada}"))
    assert events["results"][1]["error"] == "lead_id: Field required"
    assert [e.type for e in nurture.store.timeline(ada)].count("form.submitted") == 1

    too_many = await api.post("/api/events", json=[{"lead_id": ada, "type": "page.visited"}] * 1001)
    assert too_many.status_code == 422 and "at most 1000 items" in too_many.text
    one_bad = await api.post("/api/events", json={"lead_id": ada})
    assert one_bad.status_code == 422 and [e["loc"][-1] for e in one_bad.json()["detail"]] == ["type"]
