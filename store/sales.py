"""Sales: lifecycle stages and their history, reps and routing, handovers, built-in CRM records, scoring models."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from engine.lifecycle import check_transition
from store.store import Store
from store.tables import (
    CrmNote,
    CrmTask,
    Handover,
    Lead,
    Rep,
    RoundRobin,
    ScoreChangeRow,
    ScoringModelVersion,
    StageChange,
)


class LifecycleError(ValueError):
    pass


class SalesStore:
    """Lifecycle history, reps and routing, built-in CRM records, scoring model versions."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def set_stage(self, lead_id: str, stage: str, reason: str, at: float, recycle: bool = False) -> bool:
        """Moves the lead and records why; False when it already stood there."""
        with self.store.session() as s:
            lead = s.get(Lead, lead_id, with_for_update=True)
            if lead is None:
                raise LifecycleError(f"lead '{lead_id}' does not exist")
            if lead.stage == stage:
                return False
            refused = check_transition(lead.stage, stage, recycle)
            if refused:
                raise LifecycleError(refused)
            s.add(StageChange(lead_id=lead_id, from_stage=lead.stage, to_stage=stage, at=at, reason=reason))
            lead.stage = stage
            s.add(lead)
        return True

    def stage_history(self, lead_id: str) -> list[StageChange]:
        with self.store.session() as s:
            query = select(StageChange).where(col(StageChange.lead_id) == lead_id)
            return list(s.exec(query.order_by(col(StageChange.at))))

    def put_rep(self, rep: Rep) -> Rep:
        with self.store.session() as s:
            s.merge(rep)
        return rep

    def assign_waiting(self, team: str) -> list[Handover]:
        """Routes the team's open handovers that found no rep when they opened (a rep has joined since)."""
        with self.store.session() as s:
            waiting = list(s.exec(select(Handover).where(col(Handover.team) == team, col(Handover.status) == "open",
                                                         col(Handover.rep_id) == "")))
        assigned = []
        for handover in waiting:
            lead = self.store.get_lead(handover.lead_id)
            rep, how = self.route(team, handover.routing, lead) if lead else (None, "")
            if rep is None:
                break
            with self.store.session() as s:
                row = s.get(Handover, handover.key)
                if row is not None and row.rep_id == "":
                    row.rep_id, row.routed_by = rep.id, f"{how}, once a rep joined the team"
                    s.add(row)
                    assigned.append(row)
        return assigned

    def handovers_of(self, lead_id: str) -> list[Handover]:
        with self.store.session() as s:
            return list(s.exec(select(Handover).where(col(Handover.lead_id) == lead_id)))

    def teams_of(self, rep_id: str) -> set[str]:
        """The teams this rep manages."""
        with self.store.session() as s:
            return set(s.exec(select(Rep.team).where(col(Rep.id) == rep_id, col(Rep.manager).is_(True))))

    def reassign(self, key: str, rep_id: str, by: str) -> Handover:
        """Gives an open handover to another rep of its team."""
        with self.store.session() as s:
            handover, rep = s.get(Handover, key), s.get(Rep, rep_id)
            if handover is None or handover.status != "open":
                raise ValueError(f"handover '{key}' is not open")
            if rep is None or rep.team != handover.team or not rep.active:
                raise ValueError(f"'{rep_id}' is not an active rep of team '{handover.team}'")
            handover.rep_id, handover.routed_by = rep_id, f"reassigned by {by}"
            s.add(handover)
            return handover

    def reps(self, team: str | None = None) -> list[Rep]:
        query = select(Rep) if team is None else select(Rep).where(col(Rep.team) == team)
        with self.store.session() as s:
            return list(s.exec(query.order_by(col(Rep.id))))

    def route(self, team: str, routing: str, lead: Lead) -> tuple[Rep | None, str]:
        """The rep for a handover and how they were chosen."""
        with self.store.session() as s:
            query = select(Rep).where(col(Rep.team) == team, col(Rep.active).is_(True))
            team_reps = list(s.exec(query.order_by(col(Rep.id))))
            sellers = [r for r in team_reps if not r.manager] or team_reps
            if routing == "account_owner" and lead.owner:
                owner = s.get(Rep, lead.owner)
                if owner is not None and owner.active:
                    return owner, "account owner"
            if routing == "territory":
                place = str(lead.attributes.get("territory") or lead.attributes.get("country") or "")
                for rep in sellers:
                    if place and place in rep.territories:
                        return rep, f"territory {place}"
            if not sellers:
                return None, f"no active rep in team '{team}'"
            turn = s.get(RoundRobin, team, with_for_update=True) or RoundRobin(team=team)
            rep = sellers[turn.turns % len(sellers)]
            turn.turns += 1
            s.add(turn)
            return rep, "round robin" if routing == "round_robin" else f"round robin ({routing} found no match)"

    def handover(self, key: str) -> Handover | None:
        with self.store.session() as s:
            return s.get(Handover, key)

    def open_handover(self, row: Handover) -> None:
        """Stores the handover unless its key is known: a retried opening keeps the first rep chosen."""
        with self.store.session() as s:
            if s.get(Handover, row.key) is None:
                s.add(row)

    def handover_and_rep(self, key: str) -> tuple[Handover, Rep | None]:
        with self.store.session() as s:
            handover = s.get(Handover, key)
            if handover is None:
                raise LookupError(f"no handover '{key}'")
            return handover, s.get(Rep, handover.rep_id) if handover.rep_id else None

    def close_handover(self, key: str, outcome: str, reason: str, at: float) -> Handover | None:
        """Records the outcome of an open handover; a closed one keeps its first outcome."""
        with self.store.session() as s:
            row = s.get(Handover, key)
            if row is not None and row.status == "open":
                row.status, row.reason, row.closed_at = outcome, reason, at
                s.add(row)
            return row

    def managers(self, team: str) -> list[Rep]:
        return [r for r in self.reps(team) if r.manager and r.active]

    def add_task(self, task: CrmTask) -> None:
        with self.store.session() as s:
            if s.get(CrmTask, task.key) is None:
                s.add(task)

    def add_note(self, note: CrmNote) -> None:
        with self.store.session() as s:
            if s.get(CrmNote, note.key) is None:
                s.add(note)

    def tasks(self, lead_id: str) -> list[CrmTask]:
        with self.store.session() as s:
            return list(s.exec(select(CrmTask).where(col(CrmTask.lead_id) == lead_id).order_by(col(CrmTask.at))))

    def set_attribute(self, lead_id: str, name: str, value: Any) -> None:
        with self.store.session() as s:
            lead = s.get(Lead, lead_id, with_for_update=True)
            if lead is None:
                raise LifecycleError(f"lead '{lead_id}' does not exist")
            lead.attributes = {**lead.attributes, name: value}
            s.add(lead)

    def publish_scoring(self, document: dict[str, Any]) -> ScoringModelVersion:
        with self.store.session() as s:
            latest = s.exec(select(ScoringModelVersion).order_by(col(ScoringModelVersion.version).desc())).first()
            if latest is not None and latest.document == document:
                return latest
            row = ScoringModelVersion(version=(latest.version if latest else 0) + 1, document=document)
            s.add(row)
        self.store.changed()
        return row

    def scoring_model(self) -> ScoringModelVersion | None:
        with self.store.session() as s:
            return s.exec(select(ScoringModelVersion).order_by(col(ScoringModelVersion.version).desc())).first()

    def adjustments(self, lead_id: str) -> list[ScoreChangeRow]:
        return self.adjustments_of([lead_id])

    def adjustments_of(self, lead_ids: list[str]) -> list[ScoreChangeRow]:
        with self.store.session() as s:
            return list(s.exec(select(ScoreChangeRow).where(col(ScoreChangeRow.lead_id).in_(lead_ids))
                               .order_by(col(ScoreChangeRow.at))))
