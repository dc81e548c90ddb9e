"""The loop that hands Temporal what it could not take when it was asked: one process at a time runs it.

Every worker process starts the loop; a lease in the app's database lets exactly one of them deliver at a time,
and another takes over within `lease_seconds` if that one dies."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from sqlalchemy.exc import OperationalError
from temporalio.client import Client

from store.deliveries import Deliveries
from store.store import Store
from workflows.ingest import deliver_pending
from workflows.messages import TASK_QUEUE

log = logging.getLogger(__name__)
LEASE = "redelivery"


async def redeliver_once(client: Client, store: Store, holder: str, task_queue: str = TASK_QUEUE,
                         lease_seconds: float = 15.0) -> int:
    """One pass over the leads with pending deliveries, if this process holds the lease; how many were delivered."""
    deliveries = Deliveries(store)
    if not deliveries.take_lease(LEASE, holder, lease_seconds):
        return 0
    delivered = failing = 0
    for lead_id in deliveries.leads_waiting():
        report = await deliver_pending(client, store, lead_id, task_queue)
        delivered += len(report.signalled) + len(report.enrolled)
        failing = failing + 1 if report.pending else 0
        if failing == 3:
            break  # Temporal is not taking deliveries right now: try again next pass rather than every lead
        if not deliveries.take_lease(LEASE, holder, lease_seconds):
            break  # we stalled long enough for another process to take over
    return delivered


async def redeliver_forever(client: Client, store: Store, task_queue: str = TASK_QUEUE,
                            every_seconds: float = 1.0) -> None:
    holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"
    while True:
        try:
            await redeliver_once(client, store, holder, task_queue)
        except OperationalError as exc:  # the database is briefly away: the deliveries wait there for us
            log.warning("redelivery paused: %s", exc.orig)
        except Exception:  # whatever failed, the deliveries are still pending in the database: try next pass
            log.exception("redelivery pass failed; trying again in %.0fs", every_seconds)
        await asyncio.sleep(every_seconds)
