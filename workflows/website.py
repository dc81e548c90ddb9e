"""Visitors become leads: page views recorded, a form submission (confirmed by email when the form asks for it)
makes or finds the lead, moves the visitor's anonymous views onto its timeline and raises `form.submitted`,
which starts the care models that listen for it. Every step is keyed, so a repeat changes nothing twice."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.client import Client

from connectors.base import Connector, Message, Undeliverable
from engine.lead import LeadEvent, LeadIn
from engine.tracking import sign
from engine.webforms import FormDefinition, Submission
from store.store import Store
from store.tables import Form, FormSubmission, PageView, Site, Visitor
from store.website import Hit, Website
from workflows.ingest import ingest
from workflows.leads import upsert
from workflows.messages import TASK_QUEUE

CONFIRM_DAYS = 7


def definition(form: Form) -> FormDefinition:
    return FormDefinition.model_validate(form.model_dump(exclude={"created_at"}))


def viewed(view: PageView, visitor: Visitor) -> LeadEvent:
    return LeadEvent(f"view:{view.id}", "page.viewed", view.at,
                     {"url": view.url, "title": view.title, "site": view.site, "source": visitor.source})


async def track(client: Client | None, store: Store, site: Site, hit: Hit, at: float,
                task_queue: str = TASK_QUEUE) -> PageView | None:
    """Keeps the view; a visitor a form already named has it on its lead's timeline at once."""
    visitor, view = Website(store).record(site, hit, at)
    if view is not None and visitor.lead_id:
        await ingest(client, store, visitor.lead_id, viewed(view, visitor), task_queue)
    return view


async def identify(client: Client | None, store: Store, vid: str, lead_id: str, at: float,
                   task_queue: str = TASK_QUEUE) -> int:
    """The visitor is the lead: its views join the lead's timeline, and how it first arrived becomes the lead's
    `source` (and UTM attributes) unless the lead has them. How many views moved."""
    web = Website(store)
    visitor = web.identify(vid, lead_id)
    lead = store.get_lead(lead_id)
    if visitor is None or lead is None:
        return 0
    first_touch = {"source": visitor.source, **visitor.utm}
    missing = {k: v for k, v in first_touch.items() if v and k not in lead.attributes}
    if missing:
        await upsert(client, store, LeadIn(id=lead_id, attributes=missing), f"visitor:{vid}", at, task_queue,
                     why=f"arrived as a visitor ({visitor.source_why})")
    views = web.views(vid)
    for view in views:
        await ingest(client, store, lead_id, viewed(view, visitor), task_queue)
    return len(views)


async def receive(client: Client | None, store: Store, form: Form, given: Submission, visitor: str, client_addr: str,
                  at: float, task_queue: str = TASK_QUEUE) -> FormSubmission:
    """Keeps the submission as proof of consent; without double opt-in the visitor is the lead at once, with it
    the submission waits `unconfirmed` for the link in the confirmation email."""
    spec = definition(form)
    row = Website(store).add_submission(FormSubmission(
        id=uuid.uuid4().hex, form=form.id, visitor=f"{form.site}:{visitor}" if visitor else "", email=given.email,
        data={"email": given.email, **given.attributes}, consent_text=spec.consent_text if given.consented else "",
        consented=given.consented, at=at, client=client_addr,
        status="unconfirmed" if spec.double_opt_in else "confirmed", confirmed_at=None if spec.double_opt_in else at))
    if not spec.double_opt_in:
        await accept(client, store, form, row, at, task_queue)
    return Website(store).submission(row.id) or row


def confirmation(form: Form, row: FormSubmission, base_url: str, secret: bytes) -> Message:
    """The double opt-in email: one signed link, valid for a week, to a page whose button confirms."""
    token = sign({"s": row.id, "x": int(row.at + CONFIRM_DAYS * 86400)}, secret)
    link = f"{base_url.rstrip('/')}/f/confirm/{token}"
    text = (f"Please confirm that you want to hear from us: {link}\n\nYou asked through '{form.name}'. If it was not "
            f"you, ignore this email and we will not write again.\n")
    html = (f"<p>Please confirm that you want to hear from us:</p><p><a href=\"{link}\">Confirm my email "
            f"address</a></p><p>You asked through '{form.name}'. If it was not you, ignore this email and we will "
            "not write again.</p>")
    return Message(f"confirm/{row.id}", "email", "", row.email, "Please confirm your email address", html, "send",
                   text=text)


async def send_confirmation(channel: Connector, message: Message) -> None:
    """Raises Undeliverable when the address is refused (a hard bounce at once), ConnectorError otherwise."""
    receipt = await asyncio.to_thread(channel.send, message)
    if receipt.status == "bounced":
        raise Undeliverable(receipt.detail or "the address was refused")


async def accept(client: Client | None, store: Store, form: Form, row: FormSubmission, at: float,
                 task_queue: str = TASK_QUEUE) -> str:
    """Makes or finds the lead (by the visitor, else the email), moves the visitor's views onto it, stores the
    consent on its timeline and raises `form.submitted`. Safe to repeat: each part is keyed by the submission."""
    web = Website(store)
    visitor = web.visitor(row.visitor) if row.visitor else None
    lead_id = (visitor.lead_id if visitor else "") or store.lead_id_by_email(row.email) or row.email
    attributes = {k: v for k, v in row.data.items() if k != "email"}
    await upsert(client, store, LeadIn(id=lead_id, email=row.email, attributes=attributes), f"form:{row.id}", at,
                 task_queue, why=f"sent the form '{form.name}'")
    if visitor is not None:
        await identify(client, store, visitor.id, lead_id, at, task_queue)
    data: dict[str, Any] = {"form": form.id, "site": form.site, "submission": row.id, "fields": row.data}
    if row.consented:
        data |= {"consent": row.consent_text, "consented_at": row.at, "confirmed_at": row.confirmed_at or at}
    await ingest(client, store, lead_id, LeadEvent(f"form:{row.id}", "form.submitted", at, data), task_queue)
    web.confirmed(row.id, lead_id, at)
    return lead_id
