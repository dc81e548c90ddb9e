"""The designer's behaviour behind the pages: editing operations, drafts, import/export, templates, publishing
with lead migration, live numbers, lead search. (tests/test_designer_browser.py drives it in Chromium.)"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from engine import editing
from engine.layout import layout
from engine.validator import check
from store.designs import Designs
from tests.conftest import Harness
from workflows.care_model_run import CareModelRun


def test_insert_delete_and_move_keep_the_flow_connected() -> None:
    doc = editing.blank("m", "M")
    doc, email = editing.insert(doc, editing.START, "start", "email")
    doc, wait = editing.insert(doc, email, "next", "wait")
    doc, branch = editing.insert(doc, wait, "next", "branch")
    assert (doc["start"], editing.find(doc, email)["next"], editing.find(doc, wait)["next"]) == (email, wait, branch)
    assert editing.find(doc, branch)["default"] == "end" and editing.find(doc, branch)["cases"][0]["next"] == "end"
    assert check(doc)[1] == []

    moved = editing.move(doc, email, branch, "default")
    assert moved["start"] == wait and editing.find(moved, branch)["default"] == email
    assert editing.find(moved, email)["next"] == "end" and check(moved)[1] == []

    gone = editing.delete(doc, wait)
    assert editing.find(gone, email)["next"] == branch and check(gone)[1] == []
    with pytest.raises(ValueError, match="only steps with one way out can move"):
        editing.move(doc, branch, editing.START, "start")


def test_layout_puts_branches_side_by_side_and_draws_loops_apart() -> None:
    doc = yaml.safe_load((Path(__file__).resolve().parent.parent / "examples/executive-nurture.yaml").read_text())
    drawn = layout(doc)
    hot, to_sales, benchmark = (drawn.nodes[s] for s in ("hot", "to-sales", "benchmark"))
    assert to_sales.row == benchmark.row == hot.row + 1 and to_sales.col != benchmark.col
    loops = [e for e in drawn.edges if e.back]
    assert [(e.source, e.target) for e in loops] == [("wait-fortnight", "hot")]
    assert all(e.plus[0] > drawn.nodes["hot"].x + 200 for e in loops), "loops run in a lane right of the flow"
    assert all(e.source in drawn.nodes for e in drawn.edges)


async def test_templates_import_export_and_located_import_errors(designer: httpx.AsyncClient) -> None:
    made = await designer.post("/designer/templates/welcome-nurture")
    assert made.status_code == 303 and made.headers["location"] == "/designer/welcome-nurture"
    exported = await designer.get("/designer/welcome-nurture/export")
    assert exported.headers["content-disposition"] == 'attachment; filename="welcome-nurture.yaml"'
    doc = yaml.safe_load(exported.text)
    doc["id"], doc["name"] = "imported", "Imported copy"
    imported = await designer.post("/designer/import", files={"file": ("copy.yaml", yaml.safe_dump(doc))})
    assert imported.headers["location"] == "/designer/imported"
    listing = (await designer.get("/designer")).text
    assert "Imported copy" in listing and "New suspect welcome" in listing
    broken = await designer.post("/designer/import", files={"file": ("bad.yaml", "id: x\nsteps: [unclosed\n")})
    assert broken.status_code == 422 and "bad.yaml: line 3" in broken.text


async def test_an_invalid_step_is_saved_as_a_draft_and_answered_422(designer: httpx.AsyncClient) -> None:
    await designer.post("/designer/new", data={"name": "Drafty"})
    await designer.post("/designer/drafty/insert", data={"source": "__start__", "field": "start", "kind": "wait"})
    bad = await designer.post("/designer/drafty/steps/wait-1", data={"duration": "fortnightly", "next": "end"})
    assert bad.status_code == 422
    node = re.search(r'<div role="button" tabindex="0" class="([^"]*)"\s+id="node-wait-1"', bad.text)
    assert "invalid" in node.group(1).split(), "the canvas marks the step the problem belongs to"
    page = (await designer.get("/designer/drafty", params={"step": "wait-1"})).text
    assert 'value="fortnightly"' in page, "what was typed is kept in the draft"
    assert "cannot read duration &#39;fortnightly&#39;" in page


async def test_publish_with_migration_moves_waiting_leads_to_the_new_version(designer: httpx.AsyncClient,
                                                                             nurture: Harness) -> None:
    model = f"mig-{uuid.uuid4().hex[:6]}"
    v1 = {"id": model, "name": "Migrating", "start": "hello", "steps": [
        {"id": "hello", "kind": "email", "subject": "Hello", "body": "b", "next": "long-wait"},
        {"id": "long-wait", "kind": "wait", "duration": "60d", "next": "old-bye"},
        {"id": "old-bye", "kind": "email", "subject": "Old goodbye", "body": "b"}]}
    await designer.post("/api/care-models", json=v1)
    leads = [nurture.lead() for _ in range(2)]
    for lead in leads:
        await designer.post(f"/api/care-models/{model}/enrolments", json={"lead_id": lead.id})
    await nurture.days(1)

    v2 = {**v1, "steps": [v1["steps"][0],
                          {"id": "short-wait", "kind": "wait", "duration": "2d", "next": "new-bye"},
                          {"id": "new-bye", "kind": "email", "subject": "New goodbye", "body": "b"}]}
    v2["steps"][0] = {**v2["steps"][0], "next": "short-wait"}
    Designs(nurture.store).save(model, v2)  # as the editor saves a draft
    page = (await designer.get(f"/designer/{model}/publish")).text
    assert "long-wait" in page and "<td>2</td>" in page, "the publish page counts leads where they stand"
    published = await designer.post(f"/designer/{model}/publish", data={"mode": "migrate",
                                                                          "map:long-wait": "short-wait"})
    assert published.headers["location"].endswith("published=2&migrated=2")
    for lead in leads:
        run = nurture.env.client.get_workflow_handle_for(CareModelRun.run, f"nurture/{model}/{lead.id}")
        await nurture.finish(run)
        assert [m.subject for m in nurture.channel.to(lead.id)] == ["Hello", "New goodbye"]
        assert ("short-wait", "moved to version 2") in nurture.steps(lead)
    assert {e.version for e in nurture.store.enrolments(care_model=model)} == {2}


async def test_live_numbers_and_lead_search(designer: httpx.AsyncClient, nurture: Harness) -> None:
    model = f"num-{uuid.uuid4().hex[:6]}"
    doc = {"id": model, "name": "Numbers", "start": "hello",
           "settings": {"goals": [{"name": "mql", "when": {"type": "stage", "op": "at_least", "stages": ["mql"]}}]},
           "steps": [{"id": "hello", "kind": "email", "subject": "Hi", "body": "b", "next": "pause"},
                     {"id": "pause", "kind": "wait", "duration": "30d"}]}
    await designer.post("/api/care-models", json=doc)
    leads = [nurture.lead(f"{model}-lead-{i}", email=f"person{i}@{model}.test") for i in range(3)]
    for lead in leads:
        await designer.post(f"/api/care-models/{model}/enrolments", json={"lead_id": lead.id})
    await nurture.days(1)
    await designer.post("/api/events", json={"lead_id": leads[0].id, "type": "lead.updated", "data": {"stage": "mql"}})
    await nurture.days(1)
    numbers = (await designer.get(f"/designer/{model}/numbers")).text
    assert 'id="nums-pause" hx-swap-oob="true" title="here now · passed · converted">2 · 3 · 1<' in numbers
    assert 'id="nums-hello" hx-swap-oob="true" title="here now · passed · converted">0 · 3 · 1<' in numbers

    found = (await designer.get("/leads", params={"q": f"person1@{model}"})).text
    assert leads[1].id in found and leads[0].id not in found
    journey = (await designer.get(f"/leads/{leads[0].id}")).text
    assert "lead.updated" in journey and f"{model} · hello" in journey and "goal:mql" in journey


async def test_mistakes_come_back_as_messages_people_can_read(designer: httpx.AsyncClient) -> None:
    await designer.post("/designer/templates/welcome-nurture")
    panel = await designer.post("/designer/welcome-nurture/steps/await-click/move",
                                data={"source": "__start__", "field": "start"}, headers={"HX-Request": "true"})
    assert panel.status_code == 422 and panel.text.startswith('<aside id="panel"')
    assert "only steps with one way out can move" in panel.text
    page = await designer.get("/designer/nope", headers={"accept": "text/html"})
    assert page.status_code == 404 and "no care model &#39;nope&#39;" in page.text and "<nav" in page.text
    api = await designer.post("/api/care-models/nope/enrolments", json={"lead_id": "x"})
    assert api.status_code == 404 and api.json() == {"detail": "care model 'nope' is not published"}
