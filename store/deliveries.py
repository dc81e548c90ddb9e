"""Pending deliveries to Temporal (events for runs, enrolments, migrations) and the lease of the loop retrying them."""

from __future__ import annotations

import time

from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from store.store import Store
from store.tables import DeliveryRow, Lease


class Deliveries:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, rows: list[DeliveryRow]) -> None:
        """Queues deliveries; a key queued before (retried request, second ingest of a stage change) is kept once."""
        if not rows:
            return
        with self.store.session() as s:
            known = set(s.exec(select(col(DeliveryRow.key)).where(col(DeliveryRow.key).in_([r.key for r in rows]))))
            s.add_all(r for r in rows if r.key not in known)

    def pending(self, lead_id: str) -> list[DeliveryRow]:
        with self.store.session() as s:
            query = select(DeliveryRow).where(col(DeliveryRow.lead_id) == lead_id, col(DeliveryRow.status) == "pending")
            return list(s.exec(query.order_by(col(DeliveryRow.id))))

    def by_key(self, key: str) -> list[DeliveryRow]:
        with self.store.session() as s:
            return list(s.exec(select(DeliveryRow).where(col(DeliveryRow.key) == key)))

    def waiting_among(self, lead_ids: list[str]) -> list[str]:
        """Which of these leads have deliveries pending, in one read."""
        with self.store.session() as s:
            return list(s.exec(select(col(DeliveryRow.lead_id)).distinct().where(
                col(DeliveryRow.status) == "pending", col(DeliveryRow.lead_id).in_(lead_ids))))

    def leads_waiting(self, limit: int = 500) -> list[str]:
        """Leads with pending deliveries, those waiting longest first."""
        with self.store.session() as s:
            oldest = func.min(col(DeliveryRow.id))
            return list(s.exec(select(col(DeliveryRow.lead_id)).where(col(DeliveryRow.status) == "pending")
                               .group_by(col(DeliveryRow.lead_id)).order_by(oldest).limit(limit)))

    def done(self, row_id: int, outcome: str) -> None:
        with self.store.session() as s:
            s.exec(update(DeliveryRow).where(col(DeliveryRow.id) == row_id)
                   .values(status="done", outcome=outcome, done_at=time.time(),
                           attempts=col(DeliveryRow.attempts) + 1))

    def failed(self, row_id: int, error: str) -> None:
        with self.store.session() as s:
            s.exec(update(DeliveryRow).where(col(DeliveryRow.id) == row_id)
                   .values(last_error=error[:500], attempts=col(DeliveryRow.attempts) + 1))

    def take_lease(self, name: str, holder: str, seconds: float) -> bool:
        """True while `holder` runs the loop `name`: it holds a live lease, or the last one expired."""
        now = time.time()
        try:
            with self.store.session() as s:
                taken = s.exec(update(Lease).where(
                    col(Lease.name) == name, or_(col(Lease.holder) == holder, col(Lease.expires_at) < now),
                ).values(holder=holder, expires_at=now + seconds)).rowcount
                if taken:
                    return True
                if s.get(Lease, name) is None:
                    s.add(Lease(name=name, holder=holder, expires_at=now + seconds))
                    return True
        except IntegrityError:  # another process created the lease at the same moment: it is theirs
            return False
        return False
