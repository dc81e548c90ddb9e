"""What every route reaches through the request: settings, the store, Temporal, the connectors."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi import HTTPException, Request
from temporalio.client import Client

from connectors.base import Connector
from engine.lead import LeadEvent
from nurture.settings import Settings
from nurture.store import Store
from workflows.client import Ingested, ingest


def settings(request: Request) -> Settings:
    return request.app.state.settings


def store(request: Request) -> Store:
    return request.app.state.store


def connectors(request: Request) -> dict[str, Connector]:
    if request.app.state.connectors is None:
        from nurture.services import connectors_for

        request.app.state.connectors = connectors_for(settings(request), store(request))
    return request.app.state.connectors


async def temporal(request: Request) -> Client:
    if request.app.state.client is None:
        s = settings(request)
        try:
            request.app.state.client = await asyncio.wait_for(
                Client.connect(s.temporal_target, namespace=s.temporal_namespace), 5)
        except (RuntimeError, TimeoutError) as exc:
            raise HTTPException(503, f"Temporal is not reachable at {s.temporal_target}: {exc}") from None
    return request.app.state.client


async def send_event(request: Request, lead_id: str, type_: str, data: dict[str, Any] | None = None,
                     event_id: str | None = None, at: float | None = None) -> Ingested:
    event = LeadEvent(event_id or str(uuid.uuid4()), type_, at or time.time(), data or {})
    return await ingest(await temporal(request), store(request), lead_id, event,
                        task_queue=settings(request).task_queue)
