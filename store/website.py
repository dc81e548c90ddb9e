"""Sites, their anonymous visitors and page views, forms and what visitors sent through them."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func
from sqlmodel import col, select

from engine.sources import classify, utm_of
from store.store import Store
from store.tables import Form, FormSubmission, PageView, Site, Visitor

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"{what} id '{value}' must be lower-case letters, digits and dashes (at most 63)")
    return value


def origin_of(url: str) -> str:
    """'https://www.acme.test' from any address on it; ValueError for what is not an http(s) origin."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{url}' is not a web address like https://www.example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


@dataclass
class Hit:
    """One page view as the tracker reports it."""

    visitor: str
    view: str
    url: str
    title: str = ""
    referrer: str = ""


class Website:
    def __init__(self, store: Store) -> None:
        self.store = store

    # --- sites -------------------------------------------------------------------------------------

    def add_site(self, site_id: str, name: str, origins: list[str], require_consent: bool, at: float) -> Site:
        check_id(site_id, "site")
        cleaned = sorted({origin_of(o) for o in origins if o.strip()})
        if not cleaned:
            raise ValueError("name at least one origin the site is served from, like https://www.example.com")
        with self.store.session() as s:
            if s.get(Site, site_id) is not None:
                raise ValueError(f"a site with id '{site_id}' exists already")
            row = Site(id=site_id, name=name or site_id, key=f"nsk_{secrets.token_urlsafe(18)}", origins=cleaned,
                       require_consent=require_consent, created_at=at)
            s.add(row)
        return row

    def sites(self) -> list[Site]:
        with self.store.session() as s:
            return list(s.exec(select(Site).order_by(col(Site.id))))

    def site(self, site_id: str) -> Site | None:
        with self.store.session() as s:
            return s.get(Site, site_id)

    def site_by_key(self, key: str) -> Site | None:
        with self.store.session() as s:
            return s.exec(select(Site).where(col(Site.key) == key)).first()

    # --- visitors and page views -------------------------------------------------------------------

    def record(self, site: Site, hit: Hit, at: float) -> tuple[Visitor, PageView | None]:
        """Keeps the view (once per view id); a visitor's first view decides its source (first touch)."""
        vid = f"{site.id}:{hit.visitor}"
        with self.store.session() as s:
            visitor = s.get(Visitor, vid)
            if visitor is None:
                own = urlsplit(site.origins[0]).netloc if site.origins else ""
                source = classify(utm_of(hit.url), hit.referrer, own)
                visitor = Visitor(id=vid, site=site.id, source=source.name, source_why=source.why,
                                  utm=utm_of(hit.url), referrer=hit.referrer, first_seen=at, last_seen=at)
            visitor.last_seen = at
            s.add(visitor)
            if s.get(PageView, hit.view) is not None:
                return visitor, None
            view = PageView(id=hit.view, visitor=vid, site=site.id, url=hit.url, title=hit.title,
                            referrer=hit.referrer, at=at)
            s.add(view)
        return visitor, view

    def visitor(self, vid: str) -> Visitor | None:
        with self.store.session() as s:
            return s.get(Visitor, vid)

    def views(self, vid: str) -> list[PageView]:
        with self.store.session() as s:
            return list(s.exec(select(PageView).where(col(PageView.visitor) == vid).order_by(col(PageView.at))))

    def identify(self, vid: str, lead_id: str) -> Visitor | None:
        with self.store.session() as s:
            visitor = s.get(Visitor, vid)
            if visitor is not None:
                visitor.lead_id = lead_id
                s.add(visitor)
        return visitor

    # --- forms -------------------------------------------------------------------------------------

    def save_form(self, form: Form) -> Form:
        check_id(form.id, "form")
        if self.site(form.site) is None:
            raise ValueError(f"site '{form.site}' does not exist: add the site first")
        with self.store.session() as s:
            known = s.get(Form, form.id)
            if known is not None:
                form.created_at = known.created_at
            s.merge(form)
        return form

    def forms(self) -> list[Form]:
        with self.store.session() as s:
            return list(s.exec(select(Form).order_by(col(Form.id))))

    def form(self, form_id: str) -> Form | None:
        with self.store.session() as s:
            return s.get(Form, form_id)

    def add_submission(self, row: FormSubmission) -> FormSubmission:
        with self.store.session() as s:
            s.add(row)
        return row

    def submission(self, sid: str) -> FormSubmission | None:
        with self.store.session() as s:
            return s.get(FormSubmission, sid)

    def submissions(self, form_id: str | None = None, lead_id: str | None = None,
                    limit: int = 100) -> list[FormSubmission]:
        with self.store.session() as s:
            query = select(FormSubmission).order_by(col(FormSubmission.at).desc()).limit(limit)
            if form_id is not None:
                query = query.where(col(FormSubmission.form) == form_id)
            if lead_id is not None:
                query = query.where(col(FormSubmission.lead_id) == lead_id)
            return list(s.exec(query))

    def confirmed(self, sid: str, lead_id: str, at: float) -> FormSubmission | None:
        """Marks the submission confirmed for the lead; None when it was confirmed before (a second click)."""
        with self.store.session() as s:
            row = s.get(FormSubmission, sid)
            if row is None or row.lead_id:
                return None
            row.status, row.lead_id = "confirmed", lead_id
            row.confirmed_at = row.confirmed_at or at
            s.add(row)
        return row

    def counts(self) -> dict[str, Any]:
        with self.store.session() as s:
            return {
                "views": dict(s.exec(select(col(PageView.site), func.count()).group_by(col(PageView.site))).all()),
                "visitors": dict(s.exec(select(col(Visitor.site), func.count()).group_by(col(Visitor.site))).all()),
                "submissions": dict(s.exec(select(col(FormSubmission.form), func.count())
                                           .group_by(col(FormSubmission.form))).all()),
            }
