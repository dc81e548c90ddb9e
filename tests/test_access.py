"""Who may do what: every route has a policy, each role gets exactly its share, tokens carry scopes, sessions
need their CSRF token, sign-in is throttled, and the first-run, reset and single sign-on paths work end to end."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount

from connectors.smtp import SmtpConnector
from designer.app import create_app
from designer.auth import Allow, Public
from designer.signin import first_run_link
from engine.access import ROLES
from nurture.settings import Settings
from store.accounts import Accounts
from store.audit import Audit
from store.store import Store
from tests.accounts import PASSWORD, csrf_of, make_user, sign_in, token_headers
from tests.fakes import oidc
from tests.fakes.serve import serving
from tests.fakes.smtp import smtp_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PUBLIC_PATHS = {
    "/healthz", "/readyz", "/livez", "/sign-in", "/setup/{token}", "/password/reset", "/password/{purpose}/{token}",
    "/sign-in/sso",
    "/sign-in/sso/callback", "/t/c/{token}", "/t/o/{token}", "/u/{token}", "/api/inbound/{channel}",
    "/inbox/link/{token}", "/tracker.js", "/t/hit", "/f/{form_id}", "/f/confirm/{token}",
}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'nurture.db'}")
    yield store
    store.engine.dispose()


def app_for(store: Store, tmp_path: Path, **settings: Any) -> Any:
    return create_app(Settings(data_dir=tmp_path, **settings), store=store)


@pytest.fixture
async def web(db: Store, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_for(db, tmp_path)),
                                 base_url="http://nurture") as client:
        yield client


def policy_of(route: Any) -> Allow | Public | None:
    found = [d.call for d in route.dependant.dependencies if isinstance(d.call, Allow | Public)]
    return found[0] if len(found) == 1 else None


def test_every_route_declares_its_policy_and_only_the_expected_ones_are_public(db: Store, tmp_path: Path) -> None:
    app = app_for(db, tmp_path)
    public, missing = set(), []
    routes = list(iter_route_contexts(app.routes))  # as served: routers included, their prefixes applied
    assert len(routes) > 60
    for route in routes:
        if isinstance(route.original_route, Mount):
            assert route.path in ("/static", "/static/swagger", "/assets"), f"{route.path}: not static files"
            continue
        assert isinstance(route.original_route, APIRoute), f"{route.path} is not an APIRoute: it has no policy"
        policy = policy_of(route)
        if policy is None:
            missing.append(f"{sorted(route.methods)} {route.path}")
        elif isinstance(policy, Public):
            public.add(route.path)
    assert not missing, f"routes without exactly one explicit policy: {missing}"
    assert public == PUBLIC_PATHS


# One representative request per route class, and the permission it needs.
CLASSES: list[tuple[str, str, str, dict[str, Any] | None, str]] = [
    ("read care models", "GET", "/designer", None, "care-models:read"),
    ("edit a draft", "POST", "/designer/new", {"data": {"name": "Matrix"}}, "care-models:write"),
    ("publish", "POST", "/api/care-models", {"json": {"id": "x"}}, "care-models:publish"),
    ("read leads", "GET", "/leads", None, "leads:read"),
    ("write leads", "PUT", "/api/leads/matrix-lead", {"json": {"id": "matrix-lead"}}, "leads:write"),
    ("send events", "POST", "/api/events", {"json": {"lead_id": "x", "type": "y", "id": "matrix"}}, "events:write"),
    ("own inbox", "GET", "/inbox", None, "handovers:own"),
    ("change reps", "PUT", "/api/reps/r1", {"json": {"name": "R", "email": "r@x.y", "team": "t"}}, "sales:write"),
    ("privacy", "GET", "/api/leads/nobody/export", None, "privacy"),
    ("audit", "GET", "/audit", None, "audit:read"),
    ("users", "GET", "/admin/users", None, "admin"),
    ("tokens", "GET", "/admin/tokens", None, "admin"),
]


@pytest.mark.parametrize("role", list(ROLES))
async def test_each_role_may_use_exactly_its_route_classes(role: str, web: httpx.AsyncClient, db: Store) -> None:
    await sign_in(web, db, role, rep_id="r1" if role.startswith("sales") else "")
    for label, method, path, kwargs, permission in CLASSES:
        response = await web.request(method, path, **(kwargs or {}))
        allowed = permission in ROLES[role]
        if allowed:
            assert response.status_code not in (401, 403), f"{role} should {label}: {response.text[:200]}"
        else:
            assert response.status_code == 403, f"{role} must not {label} ({response.status_code})"
            assert permission in response.text and role in response.text, "the refusal says what is needed"


async def test_without_signing_in_pages_go_to_sign_in_and_the_api_answers_401(web: httpx.AsyncClient) -> None:
    page = await web.get("/designer/welcome?step=a", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/sign-in?next=/designer/welcome%3Fstep%3Da"
    fragment = await web.post("/designer/x/steps/a", headers={"hx-request": "true", "accept": "text/html",
                                                               "hx-current-url": "http://nurture/designer/x"})
    assert fragment.headers["hx-redirect"] == "/sign-in?next=/designer/x", "htmx swaps to the sign-in page"
    api = await web.post("/api/events", json={"lead_id": "a", "type": "b"})
    assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
    assert (await web.get("/openapi.json")).status_code == 401
    assert (await web.get("/healthz")).status_code in (200, 503), "health checks need no sign-in"


async def test_pages_carry_security_headers_and_no_inline_script(web: httpx.AsyncClient, db: Store) -> None:
    await sign_in(web, db)
    page = await web.get("/designer")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "same-origin"
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), "every script is a file"
    assert not re.search(r"\son[a-z]+=", page.text), "no inline event handlers"


async def test_a_session_request_without_the_csrf_token_is_refused(web: httpx.AsyncClient, db: Store) -> None:
    await sign_in(web, db, "marketer")
    token = web.headers.pop("X-CSRF-Token")
    forged = await web.post("/designer/new", data={"name": "Forged"},
                            headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert "forged" not in (await web.get("/designer")).text.lower(), "nothing was created"
    in_form = await web.post("/designer/new", data={"name": "Real", "csrf": token})
    assert in_form.status_code == 303, "a plain form carries the token as a hidden field"
    in_header = await web.post("/designer/new", data={"name": "Htmx"}, headers={"X-CSRF-Token": token})
    assert in_header.status_code == 303, "htmx carries it as a header, read from the page's meta tag"


async def test_tokens_carry_scopes_can_be_revoked_and_note_their_last_use(web: httpx.AsyncClient, db: Store) -> None:
    headers = token_headers(db, "events:write")
    sent = await web.post("/api/events", json={"lead_id": "l1", "type": "page.visited"}, headers=headers)
    assert sent.status_code in (200, 202)
    refused = await web.put("/api/leads/l1", json={"id": "l1"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["detail"] == "this token lacks the scope 'leads:write'"
    [row] = Accounts(db).tokens()
    assert row.last_used_at is not None and row.hash not in headers["Authorization"]

    await sign_in(web, db)
    page = (await web.get("/admin/tokens")).text
    assert f"nrt_{row.id}_…" in page and headers["Authorization"].split()[1] not in page, "shown once, never again"
    made = await web.post("/admin/tokens", data={"name": "CRM sync", "scope": ["leads:write", "leads:read"]})
    plain = re.search(r'class="shown-once">(nrt_[^<]+)<', made.text).group(1)
    assert (await web.get("/api/leads/l1/journey", headers={"Authorization": f"Bearer {plain}"})).status_code == 200
    assert (await web.post(f"/admin/tokens/{row.id}/revoke")).status_code == 303
    gone = await web.post("/api/events", json={"lead_id": "l1", "type": "x"}, headers=headers)
    assert gone.status_code == 401 and "revoked" in gone.text
    assert [a.action for a in Audit(db).find()][:2] == ["token.revoked", "token.created"]


async def test_failed_sign_ins_are_throttled(web: httpx.AsyncClient, db: Store) -> None:
    user = make_user(db, "viewer")
    for _ in range(5):
        wrong = await web.post("/sign-in", data={"email": user.email, "password": "not the password"})
        assert wrong.status_code == 401 and "do not match" in wrong.text
    locked = await web.post("/sign-in", data={"email": user.email, "password": PASSWORD})
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text, "even the right password waits"


async def test_the_first_run_link_creates_the_first_admin_once(db: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    link = first_run_link(settings, db)
    assert link is not None and link.startswith("http://127.0.0.1:8000/setup/")
    path = link.removeprefix(settings.public_base)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_for(db, tmp_path)),
                                 base_url="http://nurture") as web:
        short = await web.post(path, data={"email": "owner@acme.test", "password": "short"})
        assert short.status_code == 422 and "at least 10 characters" in short.text
        made = await web.post(path, data={"email": "owner@acme.test", "password": "long enough pass"},
                              follow_redirects=True)
        assert made.url.path == "/designer" and "owner@acme.test · admin" in made.text
        assert (await web.get(path)).status_code == 409, "once someone can sign in, the link is spent"
    assert first_run_link(settings, db) is None, "and no new one is printed"


async def test_a_password_reset_arrives_by_email_works_once_and_signs_out_other_sessions(
        db: Store, tmp_path: Path) -> None:
    user = make_user(db, "marketer")
    with smtp_server() as (mailbox, port):
        app = app_for(db, tmp_path)
        app.state.connectors = {"email": SmtpConnector(SmtpConnector.Config(port=port, from_address="n@acme.test"))}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nurture") as thief, \
                httpx.AsyncClient(transport=transport, base_url="http://nurture") as owner:
            await thief.post("/sign-in", data={"email": user.email, "password": PASSWORD})
            assert (await thief.get("/designer")).status_code == 200
            asked = await owner.post("/password/reset", data={"email": user.email})
            unknown = await owner.post("/password/reset", data={"email": "nobody@acme.test"})
            assert asked.text.count("If that address has an account") == unknown.text.count(
                "If that address has an account") == 1, "the answer does not reveal who has an account"
            [mail] = mailbox.to(user.email)
            path = re.search(r"http://127\.0\.0\.1:8000(/password/reset/\S+)", mail.get_body(
                preferencelist=("plain",)).get_content()).group(1)
            done = await owner.post(path, data={"password": "a brand new password"}, follow_redirects=True)
            assert done.url.path == "/designer"
            assert (await owner.post(path, data={"password": "yet another password"})).status_code == 400
            assert (await thief.get("/designer", headers={"accept": "text/html"})).status_code == 303, \
                "the old session is gone"
    assert Accounts(db).verify(user.email, "a brand new password") is not None


async def test_single_sign_on_with_openid_connect(db: Store, tmp_path: Path) -> None:
    person = {"email": "sso-user@acme.test", "email_verified": True, "name": "Sso User"}
    with serving(oidc.provider(person)) as issuer:
        app = app_for(db, tmp_path, oidc_issuer=issuer, oidc_client_id=oidc.CLIENT_ID,
                      oidc_client_secret=oidc.CLIENT_SECRET, public_url="http://nurture")
        make_user(db, "viewer", "sso-user@acme.test")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nurture") as web:
            assert "Sign in with single sign-on" in (await web.get("/sign-in")).text
            start = await web.get("/sign-in/sso", params={"next": "/leads"})
            assert start.status_code == 302 and start.headers["location"].startswith(f"{issuer}/authorize?")
            back = httpx.get(start.headers["location"])  # the provider: signs the person in, sends them back
            callback = back.headers["location"].removeprefix("http://nurture")
            page = await web.get(callback, follow_redirects=True)
            assert page.url.path == "/leads" and "sso-user@acme.test · viewer" in page.text

            person["email"] = "stranger@acme.test"  # no account here, and no default role: refused, in words
            start = await web.get("/sign-in/sso")
            back = httpx.get(start.headers["location"])
            refused = await web.get(back.headers["location"].removeprefix("http://nurture"))
            assert refused.status_code == 403 and "stranger@acme.test has no Nurture account" in refused.text

            start = await web.get("/sign-in/sso")
            forged = re.sub(r"state=[^&]+", "state=forged", httpx.get(start.headers["location"]).headers["location"])
            mismatch = await web.get(forged.removeprefix("http://nurture"))
            assert mismatch.status_code == 401 and "state mismatch" in mismatch.text


async def test_publishing_needs_an_approval_that_an_edit_voids(db: Store, tmp_path: Path) -> None:
    app = app_for(db, tmp_path, publish_approval=True)
    doc = yaml.safe_load((EXAMPLES / "welcome-nurture.yaml").read_text())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://nurture") as marketer, \
            httpx.AsyncClient(transport=transport, base_url="http://nurture") as publisher:
        mia = await sign_in(marketer, db, "marketer")
        await sign_in(publisher, db, "publisher")
        await marketer.post("/designer/templates/welcome-nurture")
        model = doc["id"]
        assert (await publisher.post(f"/designer/{model}/publish")).status_code == 409, "nobody asked yet"
        assert (await marketer.post(f"/designer/{model}/publish-requests")).status_code == 303

        # An edit after the request voids it: the publisher cannot approve what they did not see.
        await marketer.post(f"/designer/{model}/settings", data={"name": "Welcome, edited", "settings": ""})
        voided = await publisher.post(f"/designer/{model}/publish")
        assert voided.status_code == 409 and "nobody has asked" in voided.text
        assert "voided" in voided.text and "edited by" in voided.text

        await marketer.post(f"/designer/{model}/publish-requests")
        page = (await publisher.get(f"/designer/{model}/publish")).text
        assert f"{mia.email} asked to publish this exact draft" in page and "Approve and publish" in page
        approved = await publisher.post(f"/designer/{model}/publish")
        assert approved.status_code == 303 and "published=1" in approved.headers["location"]
        assert (await publisher.post("/api/care-models", json=doc)).status_code == 409, "no way around it"
    [entry] = Audit(db).find(action="care-model.published")
    assert entry.detail["asked_by"] == mia.email and any("Welcome, edited" in line for line in entry.detail["diff"])


async def test_the_audit_log_filters_and_exports(web: httpx.AsyncClient, db: Store) -> None:
    admin = await sign_in(web, db)
    await web.post("/admin/users", data={"email": "new@acme.test", "role": "viewer"})
    doc = yaml.safe_load((EXAMPLES / "welcome-nurture.yaml").read_text())
    assert (await web.post("/api/care-models", json=doc)).status_code == 201
    page = (await web.get("/audit", params={"object": "care-model:welcome"})).text
    assert "care-model.published" in page and "user.created" not in page and "diff (" in page
    mine = (await web.get("/api/audit", params={"actor": admin.email})).json()
    assert {e["action"] for e in mine} == {"user.created", "care-model.published"}
    today = mine[0]["at"]
    import datetime as dt

    day = dt.datetime.fromtimestamp(today, dt.UTC).strftime("%Y-%m-%d")
    csv = await web.get("/audit.csv", params={"since": day, "until": day})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "at,actor,action,object,detail" and len(csv.text.splitlines()) == 3
    assert (await web.get("/api/audit", params={"since": "yesterday"})).status_code == 422
    assert "is not a date" in (await web.get("/audit", params={"since": "yesterday"})).text


async def test_admins_manage_users_and_an_invitation_sets_a_password(web: httpx.AsyncClient, db: Store) -> None:
    admin = await sign_in(web, db)
    added = await web.post("/admin/users", data={"email": "Rita@Acme.test", "role": "sales-rep", "rep_id": "rita"})
    invite = re.search(r'class="shown-once">http://127\.0\.0\.1:8000([^<]+)<', added.text).group(1)
    rita = Accounts(db).by_email("rita@acme.test")
    assert rita is not None and rita.role == "sales-rep" and not rita.password_hash
    own = await web.post(f"/admin/users/{admin.id}", data={"role": "viewer", "active": "true"})
    assert own.status_code == 422 and "your own admin role" in own.text
    async with httpx.AsyncClient(transport=web._transport, base_url="http://nurture") as browser:
        page = await browser.post(invite, data={"password": "ritas own password"}, follow_redirects=True)
        assert page.url.path == "/inbox" and "rita@acme.test · sales-rep" in page.text
        csrf = csrf_of(page.text)
        await web.post(f"/admin/users/{rita.id}", data={"role": "sales-rep", "rep_id": "rita"})  # deactivated
        after = await browser.get("/inbox", headers={"accept": "text/html", "X-CSRF-Token": csrf})
        assert after.status_code == 303, "a deactivated user is signed out at once"
    assert Audit(db).find(action="user.changed")[0].detail == {"active": [True, False]}


def test_an_unknown_role_or_scope_is_refused_in_words(db: Store) -> None:
    with pytest.raises(ValueError, match="unknown role 'owner'; roles are admin, publisher"):
        Accounts(db).add_user(f"{uuid.uuid4().hex[:6]}@acme.test", "owner")
    with pytest.raises(ValueError, match="unknown scope"):
        Accounts(db).add_token("x", ["everything"], "tests")
