"""A marketer builds a care model from scratch in real Chromium: adds and edits steps, sees a problem on the
step it belongs to, publishes, simulates, and uses back/forward. Screenshots land in tests/artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect, sync_playwright

from designer.app import create_app
from designer.assets import EXAMPLES_DIR
from engine.validator import load_or_raise
from nurture.settings import Settings
from store.store import Store
from tests.accounts import PASSWORD, make_user, sign_in_browser
from tests.fakes.serve import serving

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def site_store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'nurture.db'}")


@pytest.fixture
def site(site_store: Store, tmp_path: Path) -> Iterator[str]:
    with serving(create_app(Settings(data_dir=tmp_path), store=site_store)) as url:
        yield url


@contextmanager
def signed_in_tab(url: str, store: Store, width: int = 1280, height: int = 800) -> Iterator[Page]:
    """A Chromium tab on the site, signed in as an admin (the designer tests publish too)."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": width, "height": height}, base_url=url)
        sign_in_browser(tab, store)
        yield tab
        browser.close()


@pytest.fixture
def page(site: str, site_store: Store) -> Iterator[Page]:
    with signed_in_tab(site, site_store, 1400, 900) as tab:
        yield tab


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def settled(page: Page) -> None:
    """Arms a flag that htmx raises once the next swap has settled (new content wired up, listeners on)."""
    page.evaluate("() => { window.__settled = false; document.body.addEventListener("
                  "'htmx:afterSettle', () => { window.__settled = true; }, {once: true}); }")


def add_step(page: Page, edge: str, kind: str) -> None:
    page.locator(f'button.plus[data-edge="{edge}"]').click()
    expect(page.locator(f'#panel button[data-kind="{kind}"]')).to_be_visible()
    page.wait_for_timeout(50)  # let the chooser's own swap settle before arming for the next one
    settled(page)
    page.locator(f'#panel button[data-kind="{kind}"]').click()
    page.wait_for_function("() => window.__settled")
    expect(page.locator("#panel h3")).to_contain_text(kind.replace("_", " ").capitalize())


def save(page: Page, **fields: str) -> None:
    for name, value in fields.items():
        field = page.locator(f'#panel [name="{name}"]')
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.locator("#save-step").click()
    expect(page.locator("#saved")).to_be_visible()


def test_build_publish_and_simulate_a_care_model_in_the_browser(page: Page) -> None:
    page.goto("/designer")
    page.fill('input[name="name"]', "Webinar follow-up")
    page.click("text=Create")
    expect(page).to_have_url(re.compile(r"/designer/webinar-follow-up$"))
    expect(page.locator("#node-end")).to_be_visible()

    add_step(page, "__start__:start", "email")
    save(page, subject="Thanks for joining, {{ lead.first_name }}", body="<p>Here is the recording.</p>")
    expect(page.locator("#node-email-1")).to_contain_text("Thanks for joining")

    add_step(page, "email-1:next", "wait")
    page.locator('#panel [name="duration"]').fill("two days")
    page.locator('#panel [name="duration"]').blur()  # no click on Save: the change alone is checked and kept
    expect(page.locator("#err-duration")).to_contain_text("cannot read duration 'two days'")
    expect(page.locator("#node-wait-1.invalid")).to_be_visible()
    save(page, duration="two days")
    expect(page.locator("#panel .error")).to_contain_text("cannot read duration 'two days'")
    expect(page.locator("#node-wait-1.invalid")).to_be_visible()
    expect(page.locator("#problems")).to_contain_text("step 'wait-1', field 'duration'")
    shot(page, "1-invalid-step")
    save(page, duration="2d")
    expect(page.locator("#node-wait-1.invalid")).to_have_count(0)
    expect(page.locator("#problems")).to_contain_text("No problems")

    add_step(page, "wait-1:next", "wait_event")
    save(page, event="email.clicked", timeout="5d", on_timeout="end")
    add_step(page, "wait-event-1:on_event", "email")
    save(page, subject="Want a demo?", body="<p>Book a slot.</p>")
    expect(page.locator("#node-email-2")).to_be_visible()
    shot(page, "2-built")

    # Back and forward move between the steps that were opened, with the side form to match.
    page.locator("#node-email-1").click()
    expect(page).to_have_url(re.compile(r"/designer/webinar-follow-up\?step=email-1$"))
    page.locator("#node-wait-1").click()
    expect(page.locator("#panel h3")).to_contain_text("wait-1")
    page.go_back()
    expect(page.locator("#panel h3")).to_contain_text("email-1")
    page.go_forward()
    expect(page.locator("#panel h3")).to_contain_text("wait-1")

    page.click("text=Publish…")
    expect(page.locator("pre.diff")).to_contain_text("+  subject: Thanks for joining")
    page.locator("form button.primary", has_text="Publish").click()
    expect(page.locator("#published")).to_contain_text("Published version 1")
    shot(page, "3-published")

    page.goto("/designer/webinar-follow-up/simulate")
    # The sample lead and the events are a form (their YAML is under Advanced).
    page.fill('[name="lead.id"]', "sam")
    page.fill('[name="lead.timezone"]', "Europe/Berlin")
    page.fill('[name="events.0.after"]', "3d")
    page.click("#b-append-events")
    page.fill('[name="events.1.after"]', "4d")
    page.fill('[name="events.1.type"]', "survey.done")
    page.click("#run-simulation")
    expect(page.locator("#outcome")).to_contain_text("Outcome: exit:completed", timeout=20000)
    expect(page.locator("#node-email-2.visited")).to_be_visible()
    expect(page.locator("#node-email-2 .sim")).to_contain_text("+3d")
    expect(page.locator("#sim-steps")).to_contain_text("got email.clicked")
    expect(page.locator("#sim-steps th").nth(1)).to_contain_text("Europe/Berlin")  # the lead's own clock
    expect(page.locator("#unmatched")).to_contain_text("survey.done (+4d)")
    shot(page, "4-simulated")


@pytest.fixture
def published_site(site_store: Store, tmp_path: Path) -> Iterator[str]:
    """A fresh install with every example published, as a new user finds it after `nurture publish examples/*`."""
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        site_store.publish(load_or_raise(path.read_text()))
    with serving(create_app(Settings(data_dir=tmp_path), store=site_store)) as url:
        yield url


@pytest.fixture
def tab(published_site: str, site_store: Store) -> Iterator[Page]:
    with signed_in_tab(published_site, site_store) as tab:
        yield tab


def test_each_template_is_unchanged_until_edited_simulates_as_is_and_an_insert_shows_as_one_step(tab: Page) -> None:
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        model = yaml.safe_load(path.read_text())["id"]
        tab.goto("/designer")
        tab.locator(f'form[action="/designer/templates/{path.stem}"] button').click()
        expect(tab.locator(".toolbar .muted")).not_to_contain_text("unpublished changes")
        tab.goto(f"/designer/{model}/publish")
        expect(tab.locator("#no-changes")).to_be_visible()
        tab.goto(f"/designer/{model}/simulate")
        tab.click("#run-simulation")
        expect(tab.locator("#outcome")).to_be_visible(timeout=30000)
        expect(tab.locator("#entry-note")).not_to_contain_text("skipped")

    tab.goto("/designer/executive-nurture")
    start = tab.locator("button.plus").first.get_attribute("data-edge") or ""
    add_step(tab, start, "wait")
    tab.goto("/designer/executive-nurture/publish")
    changes = tab.locator("#changes li")
    expect(changes).to_have_count(2)
    expect(changes.nth(0)).to_contain_text("Added wait wait-1; next → intro")
    expect(changes.nth(1)).to_contain_text("Rewired the start: intro → wait-1")
    shot(tab, "publish-one-step")


def test_after_adding_and_saving_a_step_by_keyboard_the_next_tab_is_inside_its_form(page: Page) -> None:
    page.goto("/designer")
    page.fill('input[name="name"]', "Keyboard only")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/designer/keyboard-only$"))
    page.locator('button.plus[data-edge="__start__:start"]').focus()
    settled(page)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__settled")  # the chooser is in and wired up
    expect(page.locator("#panel h3")).to_be_focused()
    page.locator('#panel button[data-kind="email"]').focus()
    settled(page)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__settled")
    expect(page.locator("#form-heading")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('#step-form') !== null"), "Tab lands in the new step's form"
    settled(page)
    page.keyboard.press("Enter")  # submits the form from its first field
    page.wait_for_function("() => window.__settled")
    expect(page.locator("#saved")).to_be_visible()
    expect(page.locator("#form-heading")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('#step-form') !== null")
    toolbar = page.locator(".toolbar a.button")
    expect(toolbar).to_have_count(5)  # publish, simulate, versions, results, export
    assert page.locator(".toolbar a button").count() == 0, "each toolbar action is one tab stop"


def test_sign_in_and_sign_out_in_the_browser(site: str, site_store: Store) -> None:
    user = make_user(site_store, "marketer")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 800, "height": 700}, base_url=site)
        refused: list[str] = []
        tab.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        tab.goto("/leads?q=ada")
        expect(tab).to_have_url(re.compile(r"/sign-in\?next=/leads%3Fq%3Dada$"))
        tab.fill("#email", user.email)
        tab.fill("#password", "not it at all")
        tab.click("button[type=submit]")
        expect(tab.locator("#sign-in-error")).to_have_text("That email and password do not match.")
        shot(tab, "sign-in-refused")
        tab.fill("#password", PASSWORD)
        tab.click("button[type=submit]")
        expect(tab).to_have_url(re.compile(r"/leads\?q=ada$"))  # back where they were going
        expect(tab.locator("nav.top .me")).to_have_text(f"{user.email} · marketer")
        expect(tab.locator("nav.top")).not_to_contain_text("Users")  # a marketer does not run the installation
        cookie = next(c for c in tab.context.cookies() if c["name"] == "nurture_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        shot(tab, "signed-in")
        tab.click("nav.top button:has-text('Sign out')")
        expect(tab).to_have_url(re.compile(r"/sign-in$"))
        tab.goto("/designer")
        expect(tab).to_have_url(re.compile(r"/sign-in\?next=/designer$"))
        assert refused == [], f"the pages broke their own Content-Security-Policy: {refused}"
        browser.close()


def test_an_admin_adds_a_user_and_a_token_in_the_browser(site: str, site_store: Store) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 800}, base_url=site)
        sign_in_browser(tab, site_store)
        tab.click("nav.top >> text=Users")
        expect(tab.locator("h1")).to_have_text("Users")
        tab.fill('input[name="email"][required]', "mia@acme.test")
        tab.locator("section.card select[name=role]").select_option("marketer")
        tab.click("text=Add and make an invitation link")
        expect(tab.locator("#invite .shown-once")).to_contain_text("/password/invite/")
        expect(tab.locator("table")).to_contain_text("mia@acme.test")
        shot(tab, "admin-users")
        tab.click("nav.top >> text=API tokens")
        expect(tab.locator("h1")).to_have_text("API tokens")
        tab.fill('input[name="name"]', "website forms")
        tab.check('input[name="scope"][value="events:write"]')
        tab.click("text=Create token")
        expect(tab.locator("#created .shown-once")).to_contain_text("nrt_")
        expect(tab.locator("table")).to_contain_text("events:write")
        shot(tab, "admin-tokens")
        tab.click("nav.top >> text=Audit log")
        expect(tab.locator("#audit")).to_contain_text("token.created")
        expect(tab.locator("#audit")).to_contain_text("user.created")
        shot(tab, "audit-log")
        browser.close()
