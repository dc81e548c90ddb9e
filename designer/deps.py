"""What every route reaches through the request: settings, the store, Temporal, the connectors."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from temporalio.client import Client

from connectors.base import Connector
from connectors.registry import from_settings
from engine.lead import LeadEvent
from nurture.settings import Settings
from store.accounts import Accounts
from store.audit import Audit
from store.store import Store
from workflows.ingest import Ingested, ingest, ingest_many
from workflows.messages import DATA_CONVERTER

# After a failed connection, routes that can defer their work to the redelivery loop stop trying for this long.
RECONNECT_SECONDS = 2.0


def settings(request: Request) -> Settings:
    return request.app.state.settings


def store(request: Request) -> Store:
    return request.app.state.store


def accounts(request: Request) -> Accounts:
    return Accounts(store(request))


def audit(request: Request) -> Audit:
    return Audit(store(request))


def connectors(request: Request) -> dict[str, Connector]:
    if request.app.state.connectors is None:
        request.app.state.connectors = from_settings(settings(request), store(request))
    return request.app.state.connectors


def known_events(request: Request) -> set[str]:
    """Event types that count as real when a care model names one: declared by the operator, or seen on a lead."""
    return settings(request).declared_events | store(request).event_types()


async def temporal(request: Request) -> Client:
    """The Temporal client, for routes that cannot answer without it (503 while it is out of reach)."""
    client = await temporal_or_none(request)
    if client is None:
        s = settings(request)
        raise HTTPException(503, f"Temporal is not reachable at {s.temporal_target}; try again shortly")
    return client


async def temporal_or_none(request: Request) -> Client | None:
    """The Temporal client, or None while it cannot be reached: work that can wait is queued instead."""
    state = request.app.state
    if state.client is None and time.monotonic() >= getattr(state, "retry_connect_at", 0.0):
        s = settings(request)
        try:
            connecting = Client.connect(s.temporal_target, namespace=s.temporal_namespace,
                                        data_converter=DATA_CONVERTER)
            state.client = await asyncio.wait_for(connecting, 5)
        except (RuntimeError, TimeoutError):
            state.retry_connect_at = time.monotonic() + RECONNECT_SECONDS
    return state.client


async def send_events(request: Request, events: list[tuple[str, LeadEvent]]) -> list[Ingested]:
    return await ingest_many(await temporal_or_none(request), store(request), events,
                             task_queue=settings(request).task_queue)


async def send_event(request: Request, lead_id: str, type_: str, data: dict[str, Any] | None = None,
                     event_id: str | None = None, at: float | None = None) -> Ingested:
    event = LeadEvent(event_id or str(uuid.uuid4()), type_, at or time.time(), data or {})
    return await ingest(await temporal_or_none(request), store(request), lead_id, event,
                        task_queue=settings(request).task_queue)


def invalid_input(where: str, message: str, given: Any, name: str = "") -> RequestValidationError:
    """An API 422 shaped as FastAPI's own, as the schema declares: where (body, query) and which field."""
    return RequestValidationError([{"type": "value_error", "loc": (where, name) if name else (where,),
                                    "msg": message, "input": given}])


def same_id(in_body: str, in_url: str) -> None:
    """A PUT names its object twice, in the URL and the body: they must agree."""
    if in_body != in_url:
        raise invalid_input("body", f"body id '{in_body}' does not match the URL's '{in_url}'", in_body, "id")
