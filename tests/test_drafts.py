"""A marketer's work is never lost and never bricks a page: drafts have undo and redo, settings are checked
before they are stored, every page opens for any draft the editor's own routes can make, migration never ends
journeys by default, and the housekeeping around it (archive, duplicate, reps joining a team) does what it says.
(tests/test_drafts_browser.py walks the same cases in Chromium.)"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from designer.app import create_app
from engine import editing
from engine.advice import advice
from engine.document import CareModelDocument
from engine.lead import LeadState
from nurture.settings import Settings
from store.designs import Designs
from store.sales import SalesStore
from store.store import Store
from store.tables import Handover
from tests.accounts import sign_in, token_headers
from tests.conftest import Harness
from workflows.care_model_run import CareModelRun

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
async def offline(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Store]]:
    """The web app on its own database, Temporal out of reach: every designer page must still answer."""
    store = Store.open(f"sqlite:///{tmp_path / 'nurture.db'}")
    app = create_app(Settings(data_dir=tmp_path, temporal_target="127.0.0.1:1"), store=store)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://nurture") as client:
        await sign_in(client, store)
        yield client, store


def test_undo_and_redo_walk_the_draft_history(store: Store) -> None:
    designs = Designs(store)
    designs.save("m", {"id": "m", "n": 1}, "ann", "created")
    designs.save("m", {"id": "m", "n": 2}, "ann", "edited the subject")
    designs.save("m", {"id": "m", "n": 2}, "ann", "no change: no revision")
    assert designs.step_back("m", "ann") == "edited the subject" and designs.draft("m") == {"id": "m", "n": 1}
    assert designs.step_back("m", "ann") is None, "nothing before the first revision"
    assert designs.step_back("m", "ann", forward=True) == "edited the subject" and designs.draft("m")["n"] == 2
    designs.step_back("m", "ann")
    designs.save("m", {"id": "m", "n": 3}, "bob", "another edit")
    assert designs.step_back("m", "bob", forward=True) is None, "a new edit after an undo drops what was undone"
    assert designs.undo_redo("m") == ("another edit", "")
    designs.step_back("m", "bob")
    assert designs.undo_redo("m") == ("", "another edit"), "back at the first revision, with the edit to redo"


# The settings box: ten things a marketer plausibly types. None may answer 500; each either saves or says why, by
# setting, with the text kept as typed.
SETTINGS_INPUTS: list[tuple[str, str | None]] = [
    ("entry: form.submitted", None),
    ("entry: [form.submitted]", "settings.entry: one event enrols leads"),
    ("- form.submitted\n- webinar.registered", "settings: write one setting per line"),
    ("form.submitted", "settings: write one setting per line"),
    ("entry:\n  event: form.submitted\n  where: {form: demo}", None),
    ("entry: {event: form.submitted", "settings: not valid YAML"),
    ("reenrol: yes", "settings.reenrol: Input should be 'never' or 'after_exit'"),
    ("send_window: {start: '18:00', end: '08:00'}", "settings.send_window: 'start' must be earlier than 'end'"),
    ("frequency_cap: {max: 2, per: 1w}\ndefault_timezone: Europe/Berlin", None),
    ("goals:\n  - name: booked\n    when: {type: engagement, event: meeting.booked}", None),
]


@pytest.mark.parametrize(("typed", "error"), SETTINGS_INPUTS)
async def test_settings_are_checked_before_they_are_stored(offline: tuple[httpx.AsyncClient, Store], typed: str,
                                                           error: str | None) -> None:
    client, store = offline
    await client.post("/designer/new", data={"name": "Settings"})
    before = Designs(store).draft("settings")
    answer = await client.post("/designer/settings/settings", data={"name": "Settings", "settings": typed})
    if error is None:
        assert answer.status_code == 200, answer.text
        assert Designs(store).draft("settings") != before
    else:
        assert answer.status_code == 422 and error in answer.text.replace("&#39;", "'")
        assert Designs(store).draft("settings") == before, "what does not fit is not stored"
        shown = typed.replace("'", "&#39;")
        assert f">{shown}</textarea>" in answer.text, "the text stays as typed"
    for page in ("", "/simulate", "/publish", "/export", "/versions"):
        assert (await client.get(f"/designer/settings{page}")).status_code == 200


def test_advice_warns_of_goals_that_end_runs_before_a_wait_and_of_unknown_teams_and_connectors() -> None:
    doc = CareModelDocument.model_validate({
        "id": "m", "name": "M", "start": "wait-reg", "settings": {
            "goals": [{"name": "registered", "when": {"type": "engagement", "event": "webinar.registered"}}]},
        "steps": [{"id": "wait-reg", "kind": "wait_event", "event": "webinar.registered", "timeout": "7d",
                   "on_event": "to-sales", "on_timeout": "mail"},
                  {"id": "mail", "kind": "email", "subject": "s", "body": "b", "connector": "mailgun"},
                  {"id": "to-sales", "kind": "handover", "team": "enterprize", "sla": "2d", "on_accepted": "mail",
                   "on_rejected": "mail", "on_expired": "mail"}]})
    warnings = {(w.step, w.field): w.message for w in advice(doc, teams={"enterprise"}, connectors={"email"})}
    assert "goal 'registered' is met by 'webinar.registered'" in warnings[("wait-reg", "event")]
    assert "no active rep is in team 'enterprize' (teams with reps: enterprise)" in warnings[("to-sales", "team")]
    assert "no connector 'mailgun' is installed (installed: email)" in warnings[("mail", "connector")]


def test_rename_rewires_every_edge_and_a_terminal_step_reports_what_it_cuts_off() -> None:
    doc = yaml.safe_load((EXAMPLES / "executive-nurture.yaml").read_text())
    renamed = editing.rename(doc, "intro", "first-touch")
    assert renamed["start"] == "first-touch" and not any(t == "intro" for _, _, t, _ in editing.all_edges(renamed))
    with pytest.raises(ValueError, match="another step is called 'hot'"):
        editing.rename(doc, "intro", "hot")
    with pytest.raises(ValueError, match="cannot be a step id"):
        editing.rename(doc, "intro", "1 intro")
    exited, _ = editing.insert(doc, "intro", "next", "exit")
    lost = editing.cut_off(doc, exited)
    assert len(lost) == len(editing.steps(doc)) - 1, "everything after the first email"
    kept, exit_id = editing.insert_exit_branch(doc, "intro", "next", "exit")
    assert editing.cut_off(doc, kept) == [] and exit_id in editing.reachable(kept)


# --- every page answers for every draft the editor's routes can make ---------------------------------------------

JUNK = ["", "x", "0", "-1", "true", "null", "[", "{a: 1}", "- a\n- b", "a: [1, 2]", "'", "::", "2d", "P1D", "end",
        "{{ lead.first_name", "<p>hi</p>", "email.clicked", "cases: x", "{type: score, op: gte, value: 1}",
        "- {when: {type: score, op: gte, value: 1}, next: nowhere}", "- {name: A, weight: 0}", "ünïcødé"]
SETTINGS_JUNK = [text for text, _ in SETTINGS_INPUTS] + ["", "entry: 5", "goals: [1]", "exit_when: {a: b}"]
DRAFT_JUNK = ["id: m\nsteps: foo", "steps: [1, 2]\nstart: [a]", "settings: [x]\nsteps: []", "name: 5\nstart: {}",
              "steps:\n  - {id: a, kind: nope}\n  - a\nstart: a", "settings: {entry: 1, goals: x}"]


async def _random_edit(client: httpx.AsyncClient, store: Store, model: str, rng: random.Random) -> str:
    doc = Designs(store).draft(model) or {}
    ids = [str(s.get("id")) for s in editing.steps(doc)]
    edges = [(src, fld) for src, fld, _, _ in editing.all_edges(doc)]
    op = rng.choice(["insert", "insert", "save", "save", "save", "delete", "rename", "move", "settings", "undo",
                     "redo", "yaml", "template", "builder", "builder"])
    if op == "insert" and edges:
        src, fld = rng.choice(edges)
        data = {"source": src, "field": fld, "kind": rng.choice(editing.KINDS),
                "then": rng.choice(["", "branch", "delete", "keep"])}
        await client.post(f"/designer/{model}/insert", data=data)
    elif op == "save" and ids:
        step = editing.find(doc, rng.choice(ids)) or {}
        fields = [k for k in step if k not in ("id", "kind")] + ["name", "cases", "variants", "where", "when"]
        data = {f: rng.choice(JUNK + ids) for f in rng.sample(fields, min(3, len(fields)))}
        await client.post(f"/designer/{model}/steps/{step.get('id')}", data=data,
                          params={"autosave": "1"} if rng.random() < .5 else None)
    elif op == "builder":  # the builders' nested names and buttons, with junk in any part
        paths = ["cases.0.when", "cases.1.when.conditions.0", "variants.0", "where.0", "entry.when", "goals.0.when",
                 "exit_when.3", "cases", "variants", "goals", "cases.0.when.condition", "nowhere.9"]
        data = {f"{rng.choice(paths)}.{rng.choice(['type', 'op', 'value', 'stages', 'name', 'key', 'weight'])}":
                rng.choice([*JUNK, "all", "any", "not", "stage", "engagement", "attribute", "in"]) for _ in range(4)}
        data["action"] = f"{rng.choice(['and', 'or', 'not', 'group', 'remove', 'append', 'drop', 'when', 'x'])}:" \
                         f"{rng.choice(paths)}"
        target = rng.choice([f"steps/{rng.choice(ids)}" if ids else "settings", "settings"])
        await client.post(f"/designer/{model}/{target}", data=data)
    elif op == "delete" and ids:
        await client.post(f"/designer/{model}/steps/{rng.choice(ids)}/delete")
    elif op == "rename" and ids:
        await client.post(f"/designer/{model}/steps/{rng.choice(ids)}/rename", data={"new_id": rng.choice(JUNK + ids)})
    elif op == "move" and ids and edges:
        src, fld = rng.choice(edges)
        await client.post(f"/designer/{model}/steps/{rng.choice(ids)}/move", data={"source": src, "field": fld})
    elif op == "settings":
        await client.post(f"/designer/{model}/settings", data={"name": rng.choice(JUNK), "settings":
                                                               rng.choice(SETTINGS_JUNK)})
    elif op in ("undo", "redo"):
        await client.post(f"/designer/{model}/undo", data={"redo": "true"} if op == "redo" else {})
    elif op == "yaml":
        await client.post(f"/designer/{model}/yaml", data={"text": rng.choice(DRAFT_JUNK)})
    elif op == "template":
        name = rng.choice(sorted(p.stem for p in EXAMPLES.glob("*.yaml")))
        await client.post(f"/designer/{model}/yaml", data={"text": (EXAMPLES / f"{name}.yaml").read_text()})
    return op


async def test_no_designer_page_answers_500_for_any_draft_the_editor_makes(
        offline: tuple[httpx.AsyncClient, Store], caplog: pytest.LogCaptureFixture) -> None:
    """A random walk through the editor's own routes with odd input; after each step every page must open, and
    open as itself (not as the page that offers to mend a draft it could not show)."""
    client, store = offline
    for seed in range(3):
        rng = random.Random(seed)
        model = f"fuzz-{seed}"
        await client.post("/designer/new", data={"name": model})
        done: list[str] = []
        for _ in range(45):
            done.append(await _random_edit(client, store, model, rng))
            doc = Designs(store).draft(model) or {}
            pages = ["", "/simulate", "/publish", "/export", "/versions", "/numbers"]
            pages += [f"/steps/{s.get('id')}" for s in editing.steps(doc)[:3]]
            for page in pages:
                answer = await client.get(f"/designer/{model}{page}")
                assert answer.status_code < 500 and not caplog.records, (
                    f"{page or 'editor'} answered {answer.status_code} after {done} with the draft\n"
                    f"{yaml.safe_dump(doc)}\n{caplog.text}")
    listing = await client.get("/designer")
    assert listing.status_code == 200 and "fuzz-2" in listing.text


async def test_a_draft_the_editor_cannot_draw_opens_with_the_problem_and_its_yaml(
        offline: tuple[httpx.AsyncClient, Store]) -> None:
    client, store = offline
    await client.post("/designer/new", data={"name": "Odd"})
    Designs(store).save("odd", {"id": "odd", "name": "Odd", "start": "a", "steps": [
        {"id": "a", "kind": "email", "subject": "s", "body": "b", "next": {"not": "a step id"}}]}, "script", "odd")
    page = await client.get("/designer/odd")
    assert page.status_code == 200
    mended = await client.post("/designer/odd/yaml", data={"text": "id: odd\nname: Odd\nstart: a\nsteps:\n"
                                                                   "  - {id: a, kind: exit}\n"})
    assert mended.status_code == 303 and Designs(store).draft("odd")["steps"] == [{"id": "a", "kind": "exit"}]


async def test_templates_and_imports_never_replace_a_draft_without_asking(
        offline: tuple[httpx.AsyncClient, Store]) -> None:
    client, store = offline
    await client.post("/designer/templates/welcome-nurture")
    await client.post("/designer/welcome-nurture/settings", data={"name": "My welcome", "settings": ""})
    again = await client.post("/designer/templates/welcome-nurture")
    assert again.headers["location"] == "/designer/welcome-nurture-2"
    assert Designs(store).draft("welcome-nurture")["name"] == "My welcome", "the edited draft is untouched"

    text = (EXAMPLES / "welcome-nurture.yaml").read_text()
    asked = await client.post("/designer/import", files={"file": ("welcome.yaml", text)})
    assert asked.status_code == 409 and "welcome.yaml" in asked.text and "My welcome" in asked.text
    assert Designs(store).draft("welcome-nurture")["name"] == "My welcome"
    copy = await client.post("/designer/import/confirm", data={"text": text, "choice": "copy",
                                                               "filename": "welcome.yaml"})
    assert copy.headers["location"] == "/designer/welcome-nurture-3"
    await client.post("/designer/import/confirm", data={"text": text, "choice": "replace"})
    assert Designs(store).draft("welcome-nurture")["name"] != "My welcome"
    undone = await client.post("/designer/welcome-nurture/undo")
    assert "Undone" in undone.headers["location"]
    assert Designs(store).draft("welcome-nurture")["name"] == "My welcome", "Undo brings the replaced draft back"


async def test_archive_duplicate_search_and_delete(offline: tuple[httpx.AsyncClient, Store],
                                                   tmp_path: Path) -> None:
    client, store = offline
    await client.post("/designer/new", data={"name": "Spring webinar"})
    await client.post("/designer/new", data={"name": "Autumn fair"})
    copy = await client.post("/designer/spring-webinar/duplicate")
    assert copy.headers["location"] == "/designer/spring-webinar-copy"
    assert Designs(store).draft("spring-webinar-copy")["name"] == "Spring webinar (copy)"
    found = await client.get("/designer", params={"q": "spring"})
    assert "Spring webinar (copy)" in found.text and "Autumn fair" not in found.text
    await client.post("/designer/autumn-fair/archive")
    assert "Autumn fair" not in (await client.get("/designer")).text
    assert "Autumn fair" in (await client.get("/designer", params={"archived": "true"})).text
    await client.post("/designer/autumn-fair/archive", data={"restore": "true"})
    assert "Autumn fair" in (await client.get("/designer")).text
    gone = await client.post("/designer/autumn-fair/delete")
    assert gone.status_code == 303 and Designs(store).draft("autumn-fair") is None


async def test_an_archived_care_model_takes_no_new_leads(designer: httpx.AsyncClient, nurture: Harness) -> None:
    model = f"arch-{uuid.uuid4().hex[:6]}"
    await designer.post("/api/care-models", json={"id": model, "name": "Archived", "start": "bye", "settings": {
        "entry": {"event": "trial.started"}}, "steps": [{"id": "bye", "kind": "exit"}]})
    await designer.post(f"/designer/{model}/archive")
    lead = nurture.lead()
    refused = await designer.post(f"/api/care-models/{model}/enrolments", json={"lead_id": lead.id})
    assert refused.status_code == 409 and "archived" in refused.json()["detail"]
    await designer.post("/api/events", json={"lead_id": lead.id, "type": "trial.started"})
    assert nurture.store.enrolments(care_model=model) == [], "the entry event starts nothing"


async def test_migration_asks_for_each_removed_step_and_before_ending_journeys(designer: httpx.AsyncClient,
                                                                               nurture: Harness) -> None:
    model = f"mig-{uuid.uuid4().hex[:6]}"
    v1: dict[str, Any] = {"id": model, "name": "Migrating", "start": "hello", "steps": [
        {"id": "hello", "kind": "email", "subject": "Hello", "body": "b", "next": "long-wait"},
        {"id": "long-wait", "kind": "wait", "duration": "60d", "next": "bye"},
        {"id": "bye", "kind": "email", "subject": "Goodbye", "body": "b", "next": "done"},
        {"id": "done", "kind": "exit", "name": "All done"}]}
    await designer.post("/api/care-models", json=v1)
    leads = [nurture.lead() for _ in range(3)]
    for lead in leads:
        await designer.post(f"/api/care-models/{model}/enrolments", json={"lead_id": lead.id})
    await nurture.days(1)
    v2 = {**v1, "steps": [{**v1["steps"][0], "next": "bye"}, *v1["steps"][2:]]}  # long-wait is gone
    Designs(nurture.store).save(model, v2, "ann", "removed the long wait")

    page = (await designer.get(f"/designer/{model}/publish")).text
    assert "— choose where they continue —" in page and "ends their journey here (3 leads)" in page
    unchosen = await designer.post(f"/designer/{model}/publish", data={"mode": "migrate"})
    assert unchosen.status_code == 422 and "3 leads at &#39;long-wait&#39;" in unchosen.text
    assert nurture.store.latest(model).version == 1, "nothing published without a choice"
    ending = await designer.post(f"/designer/{model}/publish", data={"mode": "migrate", "map:long-wait": "done"})
    assert ending.status_code == 409 and "3 leads at &#39;long-wait&#39; go to &#39;All done&#39; (exit)" in ending.text
    published = await designer.post(f"/designer/{model}/publish", data={"mode": "migrate", "map:long-wait": "bye"})
    assert published.headers["location"].endswith("published=2&migrated=3")
    for lead in leads:
        await nurture.finish(nurture.env.client.get_workflow_handle_for(CareModelRun.run, f"nurture/{model}/{lead.id}"))
        assert [m.subject for m in nurture.channel.to(lead.id)] == ["Hello", "Goodbye"]


async def test_a_handover_that_found_no_rep_goes_to_the_first_rep_who_joins(offline: tuple[httpx.AsyncClient, Store]
                                                                            ) -> None:
    client, store = offline
    store.upsert_lead(LeadState(id="lena", email="lena@example.com"))
    SalesStore(store).open_handover(Handover(key="h-1", lead_id="lena", care_model="m", step="to-sales",
                                             team="enterprise", routing="round_robin", opened_at=0, due_at=10**10,
                                             routed_by="no active rep in team 'enterprise'"))
    answer = await client.put("/api/reps/rita", json={"name": "Rita", "email": "rita@example.com",
                                                      "team": "enterprise"},
                              headers=token_headers(store, "sales:write"))
    assert answer.json()["assigned"] == ["h-1"]
    handover = SalesStore(store).handover("h-1")
    assert handover is not None and handover.rep_id == "rita" and "once a rep joined" in handover.routed_by


async def test_the_lead_list_shows_the_newest_leads_before_any_search(offline: tuple[httpx.AsyncClient, Store]
                                                                      ) -> None:
    client, store = offline
    for i in range(3):
        store.upsert_lead(LeadState(id=f"lead-{i}", email=f"p{i}@example.com"))
    page = (await client.get("/leads")).text
    assert re.findall(r'href="/leads/(lead-\d)"', page) == ["lead-2", "lead-1", "lead-0"]
