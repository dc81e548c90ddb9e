"""Segments: a saved condition counts its members live, keeps membership as leads change (joining starts the care
models that listen for it), and enrols its members in bulk with progress, never twice."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from engine.lead import LeadState
from store.segments import Segments
from tests.conftest import Harness
from workflows.segments import start_enrolment

ENGAGED = {"type": "all", "conditions": [
    {"type": "score", "score": "total", "op": "gte", "value": 50},
    {"type": "attribute", "name": "industry", "op": "eq", "value": "software"}]}


def leads(nurture: Harness, tag: str) -> list[str]:
    rows = [(70, "software", "mql"), (50, "software", "prospect"), (49, "software", "prospect"),
            (90, "retail", "sql"), (55, "software", "suspect")]
    for n, (fit, industry, stage) in enumerate(rows):
        nurture.store.upsert_lead(LeadState(id=f"{tag}-{n}", email=f"{tag}-{n}@example.com", fit=fit, stage=stage,
                                            attributes={"industry": industry}))
    return [f"{tag}-{n}" for n in (0, 1, 4)]


async def test_a_segment_counts_its_members_and_names_what_is_wrong_with_a_bad_condition(
        designer: httpx.AsyncClient, nurture: Harness) -> None:
    tag = uuid.uuid4().hex[:6]
    members = leads(nurture, tag)
    saved = await designer.put(f"/api/segments/engaged-{tag}", json={
        "id": f"engaged-{tag}", "name": "Engaged software", "condition": ENGAGED})
    assert saved.status_code == 200, saved.text
    mine = [m for m in saved.json()["sample"] if m.startswith(tag)]
    assert mine == members and saved.json()["joined"] >= 3
    page = await designer.get(f"/segments/engaged-{tag}")
    assert "total score ≥ 50 and industry is software" in page.text
    bad = await designer.put(f"/api/segments/engaged-{tag}", json={
        "id": f"engaged-{tag}", "name": "x", "condition": {"type": "any", "conditions": [
            {"type": "score", "score": "total", "op": "gte", "value": 50}, {"type": "stage", "op": "in"}]}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "condition"]
    assert "condition.any.conditions.1.stage.stages: Field required" in bad.json()["detail"][0]["msg"]
    # The builder counts as the marketer edits, and stores only on Save.
    live = await designer.post(f"/segments/engaged-{tag}", data={
        "condition.type": "score", "condition.score": "fit", "condition.op": "gte", "condition.value": "60"})
    assert live.status_code == 200 and "Saved" not in live.text
    assert (await designer.get(f"/api/segments/engaged-{tag}")).json()["condition"] == ENGAGED


async def test_joining_a_segment_starts_the_care_model_that_listens_and_leaving_is_on_the_timeline(
        designer: httpx.AsyncClient, nurture: Harness) -> None:
    tag = uuid.uuid4().hex[:6]
    nurture.publish(f"""
        schema_version: 1
        id: engaged-{tag}
        name: For the engaged
        start: hello
        settings: {{entry: {{event: segment.joined, where: {{segment: hot-{tag}}}}}, reenrol: never}}
        steps:
          - {{id: hello, kind: email, subject: Hello, body: Hi, next: end}}
          - {{id: end, kind: exit, reason: done}}
        """)
    assert (await designer.put(f"/api/segments/hot-{tag}", json={
        "id": f"hot-{tag}", "name": "Hot", "condition": ENGAGED})).status_code == 200
    lead = f"{tag}-lead"
    await designer.put(f"/api/leads/{lead}", json={"id": lead, "email": f"{lead}@example.com", "fit": 10,
                                                   "attributes": {"industry": "software"}})
    assert not nurture.store.enrolments(lead_id=lead)
    await designer.put(f"/api/leads/{lead}", json={"id": lead, "fit": 80})
    [run] = nurture.store.enrolments(lead_id=lead)
    await nurture.finish(nurture.env.client.get_workflow_handle(run.workflow_id))
    assert [m.subject for m in nurture.channel.to(lead)] == ["Hello"]
    await designer.put(f"/api/leads/{lead}", json={"id": lead, "attributes": {"industry": "software", "size": 9}})
    await designer.put(f"/api/leads/{lead}", json={"id": lead, "attributes": {"industry": "retail"}})
    timeline = [(e.type, e.data.get("segment")) for e in nurture.store.timeline(lead) if e.type.startswith("segment")]
    assert timeline == [("segment.joined", f"hot-{tag}"), ("segment.left", f"hot-{tag}")]


async def test_a_segment_is_enrolled_in_bulk_with_progress_and_a_second_run_enrols_no_one_twice(
        designer: httpx.AsyncClient, nurture: Harness) -> None:
    tag = uuid.uuid4().hex[:6]
    nurture.publish(f"""
        schema_version: 1
        id: bulk-{tag}
        name: Bulk
        start: pause
        steps:
          - {{id: pause, kind: wait, duration: 30d, next: end}}
          - {{id: end, kind: exit, reason: done}}
        """)
    members = leads(nurture, tag)
    condition = ENGAGED | {"conditions": [*ENGAGED["conditions"],  # type: ignore[list-item]
                                          {"type": "attribute", "name": "industry", "op": "exists"}]}
    await designer.put(f"/api/segments/s-{tag}", json={"id": f"s-{tag}", "name": "S", "condition": condition})
    total = (await designer.get(f"/api/segments/s-{tag}")).json()["count"]
    for _ in range(2):
        started = await designer.post(f"/api/segments/s-{tag}/enrolments", json={"care_model": f"bulk-{tag}"})
        assert started.status_code == 202 and started.json()["total"] == total
        url = started.json()["url"]
        for _ in range(200):
            job = (await designer.get(url)).json()
            if job["finished_at"]:
                break
            await asyncio.sleep(0.05)
        assert (job["done"], job["total"]) == (total, total)
    for lead in members:
        assert [e.care_model for e in nurture.store.enrolments(lead_id=lead)] == [f"bulk-{tag}"]
    unknown = await designer.post(f"/api/segments/s-{tag}/enrolments", json={"care_model": "nope"})
    assert unknown.status_code == 422 and "care model 'nope' is not published" in unknown.json()["detail"][0]["msg"]
    page = await designer.get(f"/segments/s-{tag}")
    assert f"Enrolling into <b>bulk-{tag}</b>: {total} of {total}, done" in page.text
    # A job whose web process stopped half-way shows so, and resumes after the last lead it handed over.
    segment = Segments(nurture.store).get(f"s-{tag}")
    assert segment is not None
    job = start_enrolment(nurture.store, segment, f"bulk-{tag}", "tests")
    Segments(nurture.store).advance(job.id, cursor=members[0], done=1)
    url = f"/api/segments/s-{tag}/enrolments/{job.id}"
    assert (await designer.get(url)).json()["stopped"] is True
    assert "stopped when its web process did" in (await designer.get(f"/segments/s-{tag}")).text
    assert (await designer.post(f"{url}/resume")).status_code == 202
    for _ in range(200):
        if (await designer.get(url)).json()["finished_at"]:
            break
        await asyncio.sleep(0.05)
    assert (await designer.get(url)).json()["done"] == total
    for lead in members:
        assert len(nurture.store.enrolments(lead_id=lead)) == 1
