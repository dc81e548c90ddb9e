"""The designer never loses or bricks a marketer's work, walked in real Chromium case by case: settings input,
typed text kept, undo and redo, asking before replacing, migration choices, terminal steps, warnings, step
names and ids, the panel in view, and the housekeeping on the list, lead and inbox pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from designer.app import create_app
from engine.lead import LeadState
from engine.validator import load_or_raise
from nurture.settings import Settings
from store.designs import Designs
from store.sales import SalesStore
from store.store import Store
from store.tables import Enrolment, Handover, JourneyRow, Rep
from tests.accounts import make_user
from tests.fakes.serve import serving
from tests.test_designer_browser import add_step, save, settled, shot, signed_in_tab
from tests.test_drafts import SETTINGS_INPUTS


@pytest.fixture
def site_store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'nurture.db'}")


@pytest.fixture
def page(site_store: Store, tmp_path: Path) -> Iterator[Page]:
    app = create_app(Settings(data_dir=tmp_path, temporal_target="127.0.0.1:1"), store=site_store)
    with serving(app) as url, signed_in_tab(url, site_store, 1280, 720) as tab:
        yield tab


def test_ten_settings_inputs_save_or_show_why_with_the_text_kept(page: Page) -> None:
    page.goto("/designer")
    page.fill('input[name="name"]', "Settings trial")
    page.click("text=Create")
    for typed, error in SETTINGS_INPUTS:
        box = page.locator('#panel textarea[name="settings"]')
        if not box.is_visible():
            page.locator("summary", has_text="Advanced: the settings as YAML").click()
        box.fill(typed)
        settled(page)
        page.click("text=Save the settings YAML")
        page.wait_for_function("() => window.__settled")
        if error is None:
            expect(page.locator("#panel #saved")).to_be_visible()
        else:
            expect(page.locator("#settings-errors")).to_contain_text(error)
            expect(page.locator('#panel textarea[name="settings"]')).to_have_value(typed)
        page.reload()  # the care model still opens, whatever was typed
        expect(page.locator("#node-end")).to_be_visible()
    page.goto("/designer/settings-trial/simulate")
    expect(page.locator("#run-simulation")).to_be_visible()


def test_typed_yaml_survives_a_syntax_error_and_undo_redo_take_edits_back(page: Page) -> None:
    page.goto("/designer")
    page.fill('input[name="name"]', "Typing")
    page.click("text=Create")
    add_step(page, "__start__:start", "webhook")
    broken = "account:\n  plan: {tier: gold\n  seats: 12"
    page.locator('#panel textarea[name="payload"]').fill(broken)
    page.locator("#save-step").click()
    expect(page.locator("#panel .error").first).to_contain_text("not valid YAML (line 3)")
    expect(page.locator('#panel textarea[name="payload"]')).to_have_value(broken)
    page.goto("/designer/typing?step=webhook-1")
    expect(page.locator('#panel textarea[name="payload"]')).to_have_value(broken)  # kept in the draft itself

    page.locator('#panel textarea[name="payload"]').fill("account:\n  plan: {tier: gold}\n  seats: 12")
    save(page)
    expect(page.locator("#problems")).to_contain_text("No problems")

    # The whole step as YAML, under Advanced: a syntax error keeps what was typed and says where.
    page.locator("summary", has_text="Advanced: this step as YAML").click()
    page.locator('#panel textarea[name="step_yaml"]').fill("kind: webhook\nurl: [https://x.test\n")
    page.locator("#save-step-yaml").click()
    expect(page.locator("#step-yaml-error")).to_contain_text("not valid YAML (line 3)")
    expect(page.locator('#panel textarea[name="step_yaml"]')).to_have_value("kind: webhook\nurl: [https://x.test\n")
    page.locator('#panel textarea[name="step_yaml"]').fill("kind: webhook\nurl: https://hooks.example.com/a\n"
                                                           "payload: {seats: 12}\nnext: end\n")
    page.locator("#save-step-yaml").click()
    expect(page.locator('#panel [name="url"]')).to_have_value("https://hooks.example.com/a")

    page.once("dialog", lambda d: d.accept())
    page.locator("#panel button", has_text="Delete step").click()
    expect(page.locator("#node-webhook-1")).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(page.locator("#done")).to_contain_text("Undone: deleted 'webhook-1'")
    expect(page.locator("#node-webhook-1")).to_be_visible()
    page.keyboard.press("Control+Shift+z")
    expect(page.locator("#done")).to_contain_text("Redone: deleted 'webhook-1'")
    expect(page.locator("#node-webhook-1")).to_have_count(0)
    page.click("text=↶ Undo")
    expect(page.locator("#node-webhook-1")).to_be_visible()


def test_templates_imports_and_reverts_ask_before_replacing(page: Page, site_store: Store, tmp_path: Path) -> None:
    page.goto("/designer")
    page.locator('form[action="/designer/templates/welcome-nurture"] button').click()
    expect(page).to_have_url(re.compile(r"/designer/welcome-nurture$"))
    page.fill('#panel input[name="name"]', "Our welcome")
    page.click("text=Save settings")
    expect(page.locator("#panel #saved")).to_be_visible()
    page.goto("/designer")
    page.locator('form[action="/designer/templates/welcome-nurture"] button').click()
    expect(page).to_have_url(re.compile(r"/designer/welcome-nurture-2$"))  # a new one, not over the edited one

    export = tmp_path / "welcome.yaml"
    export.write_text(Path("examples/welcome-nurture.yaml").read_text())
    page.goto("/designer")
    page.set_input_files('input[name="file"]', str(export))
    page.locator('form[action="/designer/import"] button').click()
    expect(page.locator("#import-clash")).to_contain_text("“Our welcome” already uses")
    page.click("text=Import it as a new care model")
    expect(page).to_have_url(re.compile(r"/designer/welcome-nurture-3$"))
    assert Designs(site_store).draft("welcome-nurture")["name"] == "Our welcome"

    site_store.publish(load_or_raise(export.read_text()))  # a version to revert to
    page.goto("/designer/welcome-nurture/versions")
    page.click("text=Revert the draft to version 1")
    expect(page.locator("#confirm-revert")).to_contain_text("The draft has changes that are not published")
    assert Designs(site_store).draft("welcome-nurture")["name"] == "Our welcome", "nothing reverted yet"
    page.click("text=Revert to version 1 anyway")
    expect(page.locator("#done")).to_contain_text("Reverted to version 1")
    page.click("text=↶ Undo")
    expect(page.locator("h1")).to_contain_text("Our welcome")


def open_step(page: Page, step_id: str) -> None:
    """Clicks a step on the canvas and waits until the panel holds its form (not the one before)."""
    page.locator(f"#node-{step_id}").click()
    expect(page.locator("#step-form")).to_have_attribute("hx-post", re.compile(f"/steps/{step_id}$"))


def _leads_waiting(store: Store, model: str, step: str, count: int) -> None:
    """Leads standing at a step of version 1, as the worker records them."""
    with store.session() as s:
        for i in range(count):
            s.add(Enrolment(enrolment=f"e{i}", workflow_id=f"nurture/{model}/l{i}", lead_id=f"l{i}", care_model=model,
                            version=1, status="running"))
    store.add_journey([JourneyRow(key=f"k{i}", enrolment=f"e{i}", lead_id=f"l{i}", care_model=model, version=1,
                                  seq=1, step=step, kind="wait", at=0, outcome="waiting") for i in range(count)])


def test_migration_makes_the_marketer_choose_and_says_how_many_journeys_end(page: Page, site_store: Store) -> None:
    v1 = ("id: mig\nname: Migrating\nstart: hello\nsteps:\n"
          "  - {id: hello, kind: email, subject: Hi, body: b, next: pause}\n"
          "  - {id: pause, kind: wait, duration: 30d, name: Long pause, next: done}\n"
          "  - {id: done, kind: exit, name: All done}\n")
    site_store.publish(load_or_raise(v1))
    _leads_waiting(site_store, "mig", "pause", 12)
    page.goto("/designer/mig?step=pause")
    page.once("dialog", lambda d: d.accept())
    page.locator("#panel button", has_text="Delete step").click()
    expect(page.locator("#node-pause")).to_have_count(0)
    page.click("text=Publish…")
    choice = page.locator('select[name="map:pause"]')
    expect(choice.locator("option:checked")).to_have_text("— choose where they continue —")
    expect(choice).to_contain_text("All done (done) — ends their journey here (12 leads)")
    page.check('input[value="migrate"]')
    page.locator("form button.primary", has_text="Publish").click()
    expect(page.locator("#publish-error")).to_contain_text("12 leads at 'pause'")
    page.locator('select[name="map:pause"]').select_option("done")
    page.locator("form button.primary", has_text="Publish").click()
    expect(page.locator("#ends-journeys")).to_contain_text("12 leads at 'pause' go to 'All done' (exit)")
    shot(page, "migration-ends-journeys")
    assert site_store.latest("mig").version == 1, "nothing published before the second yes"


def test_a_terminal_step_in_the_middle_offers_to_keep_what_followed(page: Page) -> None:
    page.goto("/designer")
    page.locator('form[action="/designer/templates/executive-nurture"] button').click()
    page.locator('button.plus[data-edge="intro:next"]').click()
    page.locator('#panel button[data-kind="exit"]').click()
    expect(page.locator("#cut-off")).to_contain_text("would no longer be reached")
    shot(page, "terminal-step-asks")
    page.locator('#panel button[data-then="branch"]').click()
    expect(page.locator("#panel h3")).to_contain_text("Exit")
    expect(page.locator("#problems")).not_to_contain_text("no path from the start")
    expect(page.locator("#node-branch-1")).to_be_visible()


def test_warnings_names_ids_and_the_panel_in_view(page: Page, site_store: Store) -> None:
    SalesStore(site_store).put_rep(Rep(id="rita", name="Rita", email="rita@example.com", team="enterprise"))
    page.goto("/designer")
    page.locator('form[action="/designer/templates/executive-nurture"] button').click()
    # A goal on the event a later wait listens for: warned, not silently pre-empted.
    page.locator("summary", has_text="Advanced: the settings as YAML").click()
    page.locator('#panel textarea[name="settings"]').fill(
        "goals:\n  - name: registered\n    when: {type: engagement, event: webinar.registered}")
    page.click("text=Save the settings YAML")
    expect(page.locator("#panel #saved")).to_be_visible()  # the canvas is redrawn before the next click
    add_step(page, "intro:next", "wait_event")
    save(page, event="webinar.registered")
    expect(page.locator(".warnings")).to_contain_text("the goal 'registered' is met by 'webinar.registered'")
    add_step(page, "wait-event-1:on_event", "handover")
    save(page, team="enterprize")
    expect(page.locator(".warnings")).to_contain_text("no active rep is in team 'enterprize'")
    open_step(page, "intro")
    save(page, connector="mailgun")
    expect(page.locator(".warnings")).to_contain_text("no connector 'mailgun' is installed")

    # Names first: the canvas and the edge choices show them; renaming an id rewires its edges.
    open_step(page, "wait-event-1")
    save(page, name="Registered?")
    expect(page.locator("#node-wait-event-1 b")).to_have_text("Registered?")
    page.locator('#panel input[name="new_id"]').fill("registered")
    page.click("text=Rename")
    expect(page.locator("#node-registered")).to_contain_text("Registered?")
    expect(page.locator("#problems")).not_to_contain_text("unknown step")
    open_step(page, "intro")
    expect(page.locator('#panel select[name="next"] option:checked')).to_have_text("Registered? (registered)")

    # The panel stays on screen for a step far down a tall flow.
    last = page.locator(".node").last
    last.scroll_into_view_if_needed()
    last.click()
    step = (last.get_attribute("id") or "").removeprefix("node-")
    expect(page.locator("#panel h3")).to_contain_text(step)  # measured once the new panel is in, not mid-swap
    box = page.locator("#panel").bounding_box()
    assert box is not None and 0 <= box["y"] < 720, f"the panel is off screen at y={box}"
    shot(page, "panel-in-view")


def test_list_leads_inbox_and_api_docs_housekeeping(page: Page, site_store: Store) -> None:
    for name in ("Spring webinar", "Autumn fair"):
        page.goto("/designer")
        page.fill('input[name="name"]', name)
        page.click("text=Create")
    page.goto("/designer")
    page.locator('tr[data-model="spring-webinar"] button', has_text="Duplicate").click()
    expect(page).to_have_url(re.compile(r"/designer/spring-webinar-copy$"))
    page.goto("/designer")
    page.fill('input[name="q"]', "spring")
    expect(page.locator("#models")).not_to_contain_text("Autumn fair")
    expect(page.locator("#models")).to_contain_text("Spring webinar (copy)")
    page.goto("/designer")
    page.locator('tr[data-model="autumn-fair"] button', has_text="Archive").click()
    expect(page.locator("#done")).to_contain_text("Archived autumn-fair")
    expect(page.locator("#models")).not_to_contain_text("Autumn fair")
    page.check('input[name="archived"]')
    page.locator('tr[data-model="autumn-fair"] button', has_text="Restore").click()
    expect(page.locator("#models")).to_contain_text("Autumn fair")

    site_store.upsert_lead(LeadState(id="lena", email="lena@example.com", attributes={"first_name": "Lena"}))
    page.goto("/leads")
    expect(page.locator("#results")).to_contain_text("lena@example.com")  # no search needed

    make_user(site_store, "sales-rep", "rita@example.com", rep_id="rita")
    SalesStore(site_store).put_rep(Rep(id="rita", name="Rita", email="rita@example.com", team="sales"))
    SalesStore(site_store).open_handover(Handover(
        key="h-1", lead_id="lena", care_model="mig", step="to-sales", team="sales", routing="round_robin",
        note="Asked for pricing twice; call before Friday", opened_at=0, due_at=10**10, rep_id="rita"))
    page.goto("/inbox")
    card = page.locator('section.card[data-lead="lena"]')
    expect(card.locator("[data-note]")).to_contain_text("Asked for pricing twice")
    card.locator("button", has_text="Accept").click()
    expect(card.locator(".decided")).to_contain_text("Accepted")
    expect(card.locator("button", has_text="Accept")).to_have_count(0)
    page.reload()  # the care model has not moved on yet: the card stays decided, with no buttons
    expect(page.locator('section.card[data-lead="lena"] .decided')).to_contain_text("Accepted")

    page.goto("/docs")  # Swagger UI from the installed packages: this browser reaches nothing else
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Nurture 0.1.0")
