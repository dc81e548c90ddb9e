"""A marketer builds a whole care model in real Chromium without typing YAML: settings, conditions, cases, a split
with a holdout, a handover; previews an email for a real lead, sends a test that arrives at a real SMTP server,
undoes and redoes, copies a branch into another care model, simulates and publishes. Every page is checked with
axe-core on the way. Screenshots land in tests/artifacts/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from designer.app import create_app
from engine.lead import LeadState
from engine.segments import SegmentIn
from engine.validator import check
from nurture.settings import Settings
from store.designs import Designs
from store.store import Store
from store.tables import Form as FormRow
from store.website import Website
from tests.fakes.serve import serving
from tests.fakes.smtp import Mailbox, smtp_server
from tests.test_designer_browser import add_step, save, settled, shot, signed_in_tab
from workflows.segments import save_segment

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


def accessible(page: Page, where: str) -> None:
    """No serious or critical axe-core violation on the page as it stands."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # evaluated through the browser's debugger, as the page's CSP allows no inline
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map(n => n.target.join(' '))}`)""")
    assert not found, f"{where}: {found}"


@pytest.fixture
def marketer(tmp_path: Path) -> Iterator[tuple[Page, Store, Mailbox]]:
    with smtp_server() as (mailbox, port):
        config = tmp_path / "connectors.yaml"
        config.write_text(f"email: {{connector: smtp, host: 127.0.0.1, port: {port}, "
                          "from_address: 'Acme <hello@acme.test>'}\n")
        store = Store.open(f"sqlite:///{tmp_path / 'nurture.db'}")
        store.upsert_lead(LeadState(id="ada", email="ada@example.com", stage="prospect",
                                    attributes={"first_name": "Ada", "company": "Lovelace Ltd"}))
        app = create_app(Settings(data_dir=tmp_path, temporal_target="127.0.0.1:1", connectors_file=config,
                                  outbound_allow="127.0.0.1"), store=store)
        with serving(app) as url, signed_in_tab(url, store, 1280, 800) as tab:
            yield tab, store, mailbox


def redraw(page: Page, name: str, value: str, shows: str) -> None:
    """Choose in a select that changes which inputs a builder shows, and wait for the redrawn form to settle."""
    settled(page)
    page.locator(f'#panel select[name="{name}"]').select_option(value)
    page.wait_for_function("() => window.__settled")
    expect(page.locator(f'#panel [name="{shows}"]').first).to_be_visible()


def press(page: Page, button: str, shows: str) -> None:
    settled(page)
    page.locator(f"#{button}").click()
    page.wait_for_function("() => window.__settled")
    expect(page.locator(f'#panel [name="{shows}"]').first).to_be_visible()


def typed(page: Page, name: str, value: str) -> None:
    """Type into a builder input and leave it: the change is saved as it is made, and the rest follows."""
    settled(page)
    page.locator(f'#panel [name="{name}"]').fill(value)
    page.locator(f'#panel [name="{name}"]').dispatch_event("change")
    page.wait_for_function("() => window.__settled")


def then(page: Page, name: str, step: str) -> None:
    settled(page)
    page.locator(f'#panel select[name="{name}"]').select_option(step)
    page.wait_for_function("() => window.__settled")


def draft(store: Store, model: str = "guide-nurture") -> dict[str, Any]:
    return Designs(store).draft(model) or {}


def step_of(store: Store, step_id: str) -> dict[str, Any]:
    return next(s for s in draft(store)["steps"] if s["id"] == step_id)


def test_a_marketer_builds_previews_tests_and_publishes_a_care_model_without_yaml(
        marketer: tuple[Page, Store, Mailbox]) -> None:
    page, store, mailbox = marketer
    page.goto("/designer")
    accessible(page, "the care model list")
    page.fill('input[name="name"]', "Guide nurture")
    page.click("text=Create")
    expect(page.locator("#settings-form")).to_be_visible()

    # Who enters, and who leaves: a guide download starts it; unsubscribing or becoming a customer ends it.
    page.fill('[name="entry.event"]', "form.submitted")
    page.fill('[name="entry.where.0.key"]', "form")
    page.fill('[name="entry.where.0.value"]', "guide-download")
    press(page, "b-append-exit_when", "exit_when.0.name")
    page.fill('[name="exit_when.0.name"]', "unsubscribed")
    redraw(page, "exit_when.0.when.type", "engagement", "exit_when.0.when.event")
    page.fill('[name="exit_when.0.when.event"]', "lead.unsubscribed")
    press(page, "b-append-exit_when", "exit_when.1.name")
    page.fill('[name="exit_when.1.name"]', "became a customer")
    redraw(page, "exit_when.1.when.type", "stage", "exit_when.1.when.stages")
    page.locator('#panel input[name="exit_when.1.when.stages"][value="customer"]').check()
    page.locator("#save-settings").click()
    expect(page.locator("#panel #saved")).to_be_visible()
    expect(page.locator("#sentence-exit_when-1-when")).to_have_text("stage is customer")
    expect(page.locator("#node-start")).to_contain_text("form.submitted")
    shot(page, "builder-1-settings")
    accessible(page, "the settings form")
    settings = draft(store)["settings"]
    assert settings["entry"] == {"event": "form.submitted", "where": {"form": "guide-download"}}
    assert [g["when"] for g in settings["exit_when"]] == [
        {"type": "engagement", "event": "lead.unsubscribed"},
        {"type": "stage", "op": "in", "stages": ["customer"]}]

    # Welcome email, two days' wait, then: clicked or score at least 50?
    add_step(page, "__start__:start", "email")
    save(page, subject="Your guide, {{ lead.first_name | default('there') }}",
         body="<p>Hi {{ lead.first_name | default('there') }}, here is the guide for {{ lead.company }}.</p>")
    add_step(page, "email-1:next", "wait")
    save(page, duration="2d")
    add_step(page, "wait-1:next", "branch")
    press(page, "b-or-cases-0-when", "cases.0.when.conditions.1.type")
    redraw(page, "cases.0.when.conditions.1.type", "engagement", "cases.0.when.conditions.1.event")
    typed(page, "cases.0.when.conditions.1.event", "email.clicked")
    expect(page.locator("#sentence-cases-0-when")).to_have_text(
        "total score ≥ 50 or clicked an email at least once")
    shot(page, "builder-2-condition")
    accessible(page, "the condition builder")

    # Engaged leads get the webinar invite and wait up to 7 days for a registration.
    add_step(page, "branch-1:cases.0.next", "email")
    save(page, subject="Join our webinar", body="<p>Thursday, 4 pm: register here.</p>")
    add_step(page, "email-2:next", "wait_event")
    save(page, event="webinar.registered", timeout="7d")
    add_step(page, "wait-event-1:on_event", "branch")
    typed(page, "cases.0.label", "sales-ready")
    typed(page, "cases.0.when.value", "70")
    expect(page.locator("#sentence-cases-0-when")).to_have_text("total score ≥ 70")
    add_step(page, "branch-2:cases.0.next", "handover")
    save(page, team="enterprise-sales", sla="2d")

    # Everyone else: a three-email drip, A/B on the first subject, 10 % held out.
    add_step(page, "branch-1:default", "split")
    typed(page, "holdout", "0.1")
    add_step(page, "split-1:variants.0.next", "email")
    save(page, subject="Three ideas from the guide", body="<p>Idea one.</p>")
    add_step(page, "email-3:next", "wait")
    save(page, duration="3d")
    add_step(page, "wait-2:next", "email")
    save(page, subject="A customer story", body="<p>How Acme did it.</p>")
    add_step(page, "email-4:next", "wait")
    save(page, duration="3d")
    add_step(page, "wait-3:next", "email")
    save(page, subject="Shall we talk?", body="<p>Book a call.</p>")
    add_step(page, "split-1:variants.1.next", "email")
    save(page, subject="What the guide left out", body="<p>Idea one, again.</p>", next="wait-2")
    page.locator("#node-wait-event-1").click()
    then(page, "on_timeout", "split-1")
    page.locator("#node-branch-2").click()
    then(page, "default", "split-1")
    expect(page.locator("#problems")).to_contain_text("No problems")
    shot(page, "builder-3-built")
    assert check(draft(store))[1] == []
    assert step_of(store, "split-1")["holdout"] == 0.1
    assert step_of(store, "branch-1")["cases"][0]["when"] == {"type": "any", "conditions": [
        {"type": "score", "score": "total", "op": "gte", "value": 50},
        {"type": "engagement", "event": "email.clicked"}]}

    # The welcome email as Ada will see it, and a test copy to the marketer's own inbox.
    page.locator("#node-email-1").click()
    page.fill("#preview-lead", "ada")
    page.locator("#preview-lead").dispatch_event("change")
    expect(page.locator("#preview-body")).to_contain_text("As ada@example.com")
    expect(page.locator(".preview-subject")).to_contain_text("Your guide, Ada")
    expect(page.frame_locator(".preview-html").locator("p")).to_contain_text("the guide for Lovelace Ltd")
    page.fill("#test-to", "me@acme.test")
    page.locator("#test-form button").click()
    expect(page.locator("#test-result")).to_contain_text("Test sent to me@acme.test")
    [message] = mailbox.to("me@acme.test")
    assert message["Subject"] == "[Test] Your guide, Ada"
    assert store.outbox() == []
    shot(page, "builder-4-preview")
    accessible(page, "the email editor with its preview")

    # Undo and redo an edit.
    save(page, subject="Your guide is here")
    page.locator("#undo-form button").click()
    expect(page.locator("#node-email-1")).to_contain_text("Your guide, {{ lead.first_name")
    page.locator("#redo-form button").click()
    expect(page.locator("#node-email-1")).to_contain_text("Your guide is here")

    # Copy the drip (the split and the steps only it leads to) into a second care model.
    page.locator("#node-split-1").click()
    page.locator("#copy-step").click()
    expect(page.locator("#copied")).to_contain_text("Copied “split-1” with 6 steps after it")
    page.goto("/designer")
    page.fill('input[name="name"]', "Guide nurture EU")
    page.click("text=Create")
    page.locator('button.plus[data-edge="__start__:start"]').click()
    expect(page.locator("#paste-button")).to_contain_text("Paste “split-1” (7 steps) from guide-nurture")
    page.locator("#paste-button").click()
    expect(page.locator("#node-split-1-copy")).to_be_visible()
    pasted = draft(store, "guide-nurture-eu")
    assert sorted(s["id"] for s in pasted["steps"] if s["id"].endswith("-copy")) == sorted(
        f"{i}-copy" for i in ("split-1", "email-3", "email-4", "email-5", "email-6", "wait-2", "wait-3"))
    assert check(pasted)[1] == []
    shot(page, "builder-5-pasted")

    # Simulate and publish the first.
    page.goto("/designer/guide-nurture/simulate")
    page.click("#run-simulation")
    expect(page.locator("table.sim")).to_contain_text("email-1")
    accessible(page, "the simulation")
    page.goto("/designer/guide-nurture/publish")
    accessible(page, "the publish page")
    page.locator("form button.primary", has_text="Publish").click()
    expect(page.locator("#published")).to_contain_text("Published version 1")
    shot(page, "builder-6-published")


def test_every_page_passes_axe_core(marketer: tuple[Page, Store, Mailbox]) -> None:
    page = marketer[0]
    page.goto("/designer")
    page.locator("form[action='/designer/templates/executive-nurture'] button").click()
    page.wait_for_url("**/designer/executive-nurture")
    accessible(page, "the editor")
    for step in ("intro", "connect", "fit-bonus", "wait-week", "hot", "to-sales", "escalate", "end"):
        page.locator(f"#node-{step}").click()
        expect(page.locator("#panel h3")).to_contain_text(step)
        accessible(page, f"the form of step {step}")
    page.locator('button.plus[data-edge="__start__:start"]').click()
    expect(page.locator('#panel button[data-kind="email"]')).to_be_visible()
    accessible(page, "the step chooser")
    store = marketer[1]
    Website(store).add_site("www", "Acme", ["https://www.acme.test"], False, time.time())
    Website(store).save_form(FormRow(id="guide", site="www", name="Get the guide", created_at=time.time(),
                                     fields=[{"name": "email"}, {"name": "company"}], consent_text="Email me."))
    for n, (fit, industry) in enumerate([(70, "software"), (55, "software"), (80, "retail"), (62, "software")]):
        store.upsert_lead(LeadState(id=f"lead-{n}", email=f"lead-{n}@example.com", stage="prospect", fit=fit,
                                    attributes={"industry": industry}))
    save_segment(store, SegmentIn(id="engaged", name="Engaged software", condition={"type": "all", "conditions": [
        {"type": "score", "score": "total", "op": "gte", "value": 50},
        {"type": "attribute", "name": "industry", "op": "eq", "value": "software"}]}), "tests", time.time())
    for path in ("/designer/executive-nurture/simulate", "/designer/executive-nurture/publish",
                 "/designer/executive-nurture/versions", "/leads", "/leads/ada", "/inbox", "/audit",
                 "/admin/users", "/admin/tokens", "/admin/connectors", "/website", "/segments", "/segments/engaged",
                 "/leads/import", "/f/guide", "/reports"):
        page.goto(path)
        accessible(page, path)
        if path == "/segments/engaged":
            shot(page, "segment")
    page.goto("/leads/import")
    page.set_input_files("#file", files=[{"name": "leads.csv", "mimeType": "text/csv",
                                          "buffer": b"Email,Company\nbo@acme.test,Bo Ltd\nnot-an-address,X\n"}])
    page.get_by_role("button", name="Upload and map columns").click()
    expect(page.locator("#import-summary")).to_contain_text("1 lead from 2 rows")
    accessible(page, "the column mapping")
    shot(page, "leads-import")
    page.locator("nav.top button", has_text="Sign out").click()
    expect(page.locator('input[name="password"]')).to_be_visible()
    accessible(page, "the sign-in page")


def test_drag_a_step_onto_a_plus_zoom_to_fit_and_reach_every_step_by_keyboard(
        marketer: tuple[Page, Store, Mailbox]) -> None:
    page, store, _ = marketer
    page.goto("/designer")
    page.locator("form[action='/designer/templates/executive-nurture'] button").click()
    page.wait_for_url("**/designer/executive-nurture")
    settled(page)
    page.locator("#node-fit-bonus").drag_to(page.locator('button.plus[data-edge="intro:next"]'))
    page.wait_for_function("() => window.__settled")
    steps = {s["id"]: s for s in draft(store, "executive-nurture")["steps"]}
    assert [steps["intro"]["next"], steps["fit-bonus"]["next"], steps["connect"]["next"]] == [
        "fit-bonus", "connect", "wait-week"]
    expect(page.locator("#panel h3")).to_contain_text("fit-bonus")

    width = page.locator("#node-intro").bounding_box()["width"]  # type: ignore[index]
    page.locator('[data-zoom="fit"]').click()
    expect(page.locator("#zoom-level")).not_to_have_text("100 %")
    assert page.locator("#node-intro").bounding_box()["width"] < width  # type: ignore[index]
    shot(page, "builder-7-fit")
    page.reload()  # the zoom stays for this care model
    expect(page.locator("#zoom-level")).not_to_have_text("100 %")
    page.locator('[data-zoom="1"]').click()
    expect(page.locator("#zoom-level")).to_have_text("100 %")

    # Every step is a button: Tab reaches it, Enter opens its form.
    page.locator("#node-hot").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#panel h3")).to_contain_text("hot")


def tab_to(page: Page, selector: str, limit: int = 150) -> None:
    """Press Tab until the element is focused: what a keyboard-only marketer does."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} is not reachable with Tab")


def enter(page: Page) -> None:
    """Press Enter on something that swaps part of the page, and wait until the new part is wired up."""
    settled(page)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__settled")


def test_a_keyboard_only_marketer_builds_simulates_and_publishes(marketer: tuple[Page, Store, Mailbox]) -> None:
    page, store, _ = marketer
    page.goto("/designer")
    tab_to(page, 'input[name="name"]')
    page.keyboard.type("Keys only")
    page.keyboard.press("Enter")
    expect(page.locator("#node-end")).to_be_visible()

    tab_to(page, 'button.plus[data-edge="__start__:start"]')
    enter(page)
    tab_to(page, '#panel button[data-kind="email"]')
    enter(page)
    expect(page.locator("#panel h3")).to_contain_text("Email")
    tab_to(page, '#panel input[name="subject"]')
    page.keyboard.press("Control+A")
    page.keyboard.type("Typed without a mouse")
    tab_to(page, "#save-step")
    enter(page)
    expect(page.locator("#node-email-1")).to_contain_text("Typed without a mouse")

    tab_to(page, 'a[href="/designer/keys-only/simulate"]')
    page.keyboard.press("Enter")
    tab_to(page, "#panel button.primary")
    page.keyboard.press("Enter")
    expect(page.locator("#outcome")).to_be_visible()
    expect(page.locator("#node-email-1.visited")).to_be_visible()

    tab_to(page, 'a[href="/designer/keys-only/publish"]')
    page.keyboard.press("Enter")
    tab_to(page, "form button.primary")
    page.keyboard.press("Enter")
    expect(page.locator("#published")).to_contain_text("Published version 1")
    assert store.latest("keys-only") is not None


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1920, 1080), (800, 900)])
def test_the_editor_fits_the_window_at_each_size(tmp_path: Path, width: int, height: int) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'nurture.db'}")
    app = create_app(Settings(data_dir=tmp_path, temporal_target="127.0.0.1:1"), store=store)
    with serving(app) as url, signed_in_tab(url, store, width, height) as page:
        page.goto("/designer")
        page.locator("form[action='/designer/templates/executive-nurture'] button").click()
        page.wait_for_url("**/designer/executive-nurture")
        page.locator("#node-hot").click()
        expect(page.locator("#step-form")).to_be_visible()
        # Nothing runs off the side of the window: the canvas scrolls inside itself, the form stays beside it.
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        panel, canvas = page.locator("#panel").bounding_box(), page.locator("#canvas").bounding_box()
        assert panel and canvas and panel["x"] >= canvas["x"] + canvas["width"] and panel["x"] + panel["width"] <= width
        shot(page, f"builder-editor-{width}")
