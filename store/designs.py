"""What the designer reads and writes: drafts, published versions, per-step numbers, leads in flight."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from typing import Any

from sqlmodel import Session, col, delete, func, select

from store.reports import report
from store.store import Store
from store.tables import CareModelVersion, Draft, DraftRevision, Enrolment, Lead, PublishRequest, utcnow

HISTORY_KEPT = 200  # revisions of each draft that undo can go back through


def draft_hash(document: dict[str, Any]) -> str:
    """The draft exactly as written: any edit, even one that changes no meaning, gives another hash."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


class Designs:
    def __init__(self, store: Store) -> None:
        self.store = store

    def draft(self, care_model: str) -> dict[str, Any] | None:
        with self.store.session() as s:
            row = s.get(Draft, care_model)
            if row is not None:
                return row.document
        latest = self.store.latest(care_model)
        return latest.document if latest else None

    def save(self, care_model: str, document: dict[str, Any], by: str = "", what: str = "edit") -> None:
        """Saves the draft as a new revision (what comes after the current one, undone edits, is dropped)."""
        latest = self.store.latest(care_model)  # read first: a session inside the write would wait on itself
        with self.store.session() as s:
            row = s.get(Draft, care_model)
            if row is None:
                row = Draft(care_model=care_model, document=latest.document if latest else document)
                if latest is not None:  # undo can go back to what was published
                    s.add(DraftRevision(care_model=care_model, seq=0, document=latest.document,
                                        what=f"version {latest.version} as published", at=time.time()))
            elif row.document == document:
                return
            elif s.exec(self._revision(care_model, row.position)).first() is None:  # a draft from before history
                s.add(DraftRevision(care_model=care_model, seq=row.position, document=row.document,
                                    what="the draft before history was kept", at=time.time()))
            s.exec(delete(DraftRevision).where(col(DraftRevision.care_model) == care_model,
                                               col(DraftRevision.seq) > row.position))
            s.exec(delete(DraftRevision).where(col(DraftRevision.care_model) == care_model,
                                               col(DraftRevision.seq) <= row.position - HISTORY_KEPT))
            row.position += 1
            s.add(DraftRevision(care_model=care_model, seq=row.position, document=document, what=what, by=by,
                                at=time.time()))
            self._put(s, row, document, by)

    @staticmethod
    def _revision(care_model: str, seq: int) -> Any:
        return select(DraftRevision).where(col(DraftRevision.care_model) == care_model, col(DraftRevision.seq) == seq)

    @staticmethod
    def _put(s: Session, row: Draft, document: dict[str, Any], by: str) -> None:
        """A request to publish an earlier draft is voided, so no one approves what they did not see."""
        digest = draft_hash(document)
        row.document, row.updated_at = document, utcnow()
        s.add(row)
        for waiting in s.exec(select(PublishRequest).where(col(PublishRequest.care_model) == row.care_model,
                                                           col(PublishRequest.status) == "waiting")):
            if waiting.hash != digest:
                waiting.status, waiting.decided_at = "voided", time.time()
                waiting.note = f"the draft was edited{' by ' + by if by else ''} after the request"
                s.add(waiting)

    def step_back(self, care_model: str, by: str, forward: bool = False) -> str | None:
        """Undo (or, forward, redo) one revision; says what was undone or redone, or None when there is nothing."""
        with self.store.session() as s:
            row = s.get(Draft, care_model)
            if row is None:
                return None
            here = s.exec(self._revision(care_model, row.position)).first()
            there = s.exec(self._revision(care_model, row.position + (1 if forward else -1))).first()
            if here is None or there is None:
                return None
            row.position = there.seq
            self._put(s, row, there.document, by)
            return there.what if forward else here.what

    def undo_redo(self, care_model: str) -> tuple[str, str]:
        """What Undo would take back and what Redo would bring back ("" for nothing), read without the documents:
        the editor asks on every change."""
        with self.store.session() as s:
            row = s.get(Draft, care_model)
            if row is None:
                return "", ""
            near = dict(s.exec(select(col(DraftRevision.seq), col(DraftRevision.what)).where(
                col(DraftRevision.care_model) == care_model, col(DraftRevision.seq) >= row.position - 1,
                col(DraftRevision.seq) <= row.position + 1)).all())
        here, back = near.get(row.position), near.get(row.position - 1)
        return (here or "") if here is not None and back is not None else "", near.get(row.position + 1) or ""

    def archive(self, care_model: str, archived: bool) -> None:
        """Draft rows hold the flag; a care model published without the designer gets one here."""
        document = self.draft(care_model)
        if document is None:
            raise KeyError(care_model)
        with self.store.session() as s:
            row = s.get(Draft, care_model) or Draft(care_model=care_model, document=document)
            row.archived_at = time.time() if archived else None
            s.add(row)
        self.store.changed()

    def delete(self, care_model: str) -> None:
        """Deletes a care model that was never published, with its history."""
        if self.store.latest(care_model) is not None:
            raise ValueError(f"'{care_model}' has been published: archive it instead, so its leads keep their history")
        with self.store.session() as s:
            s.exec(delete(DraftRevision).where(col(DraftRevision.care_model) == care_model))
            row = s.get(Draft, care_model)
            if row is not None:
                s.delete(row)

    def ask_to_publish(self, care_model: str, document: dict[str, Any], by: str) -> PublishRequest:
        digest = draft_hash(document)
        with self.store.session() as s:
            for old in s.exec(select(PublishRequest).where(col(PublishRequest.care_model) == care_model,
                                                           col(PublishRequest.status) == "waiting")):
                if old.hash == digest:
                    return old
            row = PublishRequest(care_model=care_model, hash=digest, document=document, requested_by=by,
                                 requested_at=time.time())
            s.add(row)
        return row

    def publish_requests(self, care_model: str) -> list[PublishRequest]:
        with self.store.session() as s:
            return list(s.exec(select(PublishRequest).where(col(PublishRequest.care_model) == care_model)
                               .order_by(col(PublishRequest.requested_at).desc())))

    def decide_request(self, request_id: int, status: str, by: str, note: str = "") -> PublishRequest:
        with self.store.session() as s:
            row = s.get(PublishRequest, request_id)
            if row is None or row.status != "waiting":
                raise ValueError(f"request {request_id} is {row.status if row else 'unknown'}, not waiting")
            row.status, row.decided_by, row.decided_at, row.note = status, by, time.time(), note
            s.add(row)
            return row

    def discard(self, care_model: str) -> None:
        with self.store.session() as s:
            row = s.get(Draft, care_model)
            if row is not None:
                s.delete(row)

    def names(self, query: str = "", archived: bool = False) -> list[tuple[str, str, int | None, bool]]:
        """(care model, name, latest version, has unpublished changes) for every model or draft whose id or name
        holds the query; the archived ones, or the others."""
        published = {v.care_model: v for v in self.store.latest_versions()}
        with self.store.session() as s:
            drafts = {d.care_model: d for d in s.exec(select(Draft))}
        out = []
        for model in sorted(set(published) | set(drafts)):
            version, draft = published.get(model), drafts.get(model)
            if (draft is not None and draft.archived_at is not None) != archived:
                continue
            name = (draft.document.get("name") if draft else None) or (version.name if version else model)
            if query.strip().lower() not in f"{model} {name}".lower():
                continue
            changed = draft is not None and (version is None or draft.document != version.document)
            out.append((model, str(name), version.version if version else None, changed))
        return out

    def versions(self, care_model: str) -> list[CareModelVersion]:
        with self.store.session() as s:
            return list(s.exec(select(CareModelVersion).where(col(CareModelVersion.care_model) == care_model)
                               .order_by(col(CareModelVersion.version).desc())))

    def version(self, care_model: str, number: int) -> CareModelVersion | None:
        with self.store.session() as s:
            return s.exec(select(CareModelVersion).where(col(CareModelVersion.care_model) == care_model,
                                                         col(CareModelVersion.version) == number)).first()

    def where_now(self, care_model: str) -> dict[tuple[int, str], int]:
        """Running leads by (version, step they last reached)."""
        with self.store.session() as s:
            return dict(Counter({(v, step): n for v, step, n in s.exec(
                select(col(Enrolment.at_version), col(Enrolment.at_step), func.count())
                .where(col(Enrolment.care_model) == care_model, col(Enrolment.status) == "running",
                       col(Enrolment.at_step) != "")
                .group_by(col(Enrolment.at_version), col(Enrolment.at_step)))}))

    def numbers(self, care_model: str) -> dict[str, dict[str, int]]:
        """Per step, over every version: leads there now, leads that passed through it, and of those, leads that
        met a goal; for a message step also sent, opened, clicked. Read from the running totals, so the canvas can
        refresh them often."""
        out: dict[str, dict[str, int]] = defaultdict(lambda: {"now": 0, "passed": 0, "converted": 0})
        found = report(self.store, care_model)
        for f in found.steps:
            out[f.step]["now"] += f.now
            out[f.step]["passed"] += f.entered
            out[f.step]["converted"] += f.converted
        for m in found.messages:  # shown on the canvas on demand
            out[m.step] |= {"sent": m.sent, "opened": m.opened, "clicked": m.clicked}
        return dict(out)

    def search_leads(self, query: str, limit: int = 50) -> list[Lead]:
        """Leads whose id or email holds the query, newest first (the newest of all, for no query)."""
        pattern = f"%{query.strip().lower()}%"
        with self.store.session() as s:
            return list(s.exec(select(Lead).where(
                func.lower(col(Lead.id)).like(pattern) | func.lower(col(Lead.email)).like(pattern))
                .order_by(col(Lead.created_at).desc()).limit(limit)))
