"""Signing test clients in as real users: through the sign-in form, with the session's CSRF token after."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.sync_api import Page, expect

from store.accounts import Accounts
from store.store import Store
from store.tables import User

PASSWORD = "correct horse battery staple"


def make_user(store: Store, role: str = "admin", email: str | None = None, rep_id: str = "") -> User:
    email = email or f"{role}-{uuid.uuid4().hex[:6]}@acme.test"
    return Accounts(store).add_user(email, role, name=role.title(), password=PASSWORD, rep_id=rep_id)


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "a signed-in page carries the CSRF token in a meta tag"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, store: Store, role: str = "admin", rep_id: str = "",
                  email: str | None = None) -> User:
    """Signs `client` in through the form; later requests carry the cookie and the page's CSRF token."""
    user = make_user(store, role, email, rep_id)
    page = await client.post("/sign-in", data={"email": user.email, "password": PASSWORD}, follow_redirects=True)
    assert page.status_code == 200, page.text
    client.headers["X-CSRF-Token"] = csrf_of(page.text)
    return user


def sign_in_browser(page: Page, store: Store, role: str = "admin") -> User:
    user = make_user(store, role)
    page.goto("/sign-in")
    page.fill("#email", user.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("nav.top .me")).to_contain_text(user.email)
    return user


def token_headers(store: Store, *scopes: str) -> dict[str, str]:
    plain, _ = Accounts(store).add_token(f"test-{uuid.uuid4().hex[:4]}", list(scopes), "tests")
    return {"Authorization": f"Bearer {plain}"}
