"""The audit log: an append-only record of who did what to which object. Nothing here edits or deletes a row."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

from sqlmodel import col, select

from store.store import Store
from store.tables import AuditRow

COLUMNS = ("at", "actor", "action", "object", "detail")


class Audit:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, actor: str, action: str, object_: str, **detail: Any) -> AuditRow:
        row = AuditRow(at=time.time(), actor=actor, action=action, object=object_, detail=detail)
        with self.store.session() as s:
            s.add(row)
        return row

    def find(self, actor: str = "", object_: str = "", since: float | None = None, until: float | None = None,
             action: str = "", limit: int = 500) -> list[AuditRow]:
        """Newest first. `object_` matches a prefix, so 'care-model:welcome' finds every entry about it."""
        query = select(AuditRow)
        if actor:
            query = query.where(col(AuditRow.actor) == actor)
        if object_:
            query = query.where(col(AuditRow.object).startswith(object_))
        if action:
            query = query.where(col(AuditRow.action) == action)
        if since is not None:
            query = query.where(col(AuditRow.at) >= since)
        if until is not None:
            query = query.where(col(AuditRow.at) < until)
        with self.store.session() as s:
            return list(s.exec(query.order_by(col(AuditRow.at).desc(), col(AuditRow.id).desc()).limit(limit)))

    def actors(self) -> list[str]:
        with self.store.session() as s:
            return sorted(s.exec(select(AuditRow.actor).distinct()))


def to_csv(rows: list[AuditRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for r in rows:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.at))
        writer.writerow([at, r.actor, r.action, r.object, json.dumps(r.detail, sort_keys=True)])
    return out.getvalue()
