"""Database engine (SQLite with WAL by default, PostgreSQL by URL) and numbered schema migrations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlmodel import SQLModel

from store import rollups, tables

_SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000", "foreign_keys=ON")


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "isolation_level": None})

    @event.listens_for(engine, "connect")
    def _pragmas(conn: Any, _record: Any) -> None:
        cursor = conn.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    # Take the write lock at BEGIN, so a check-then-write (frequency cap, outbox claim) cannot interleave.
    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _create(engine: Engine, *models: type[SQLModel]) -> None:
    SQLModel.metadata.create_all(engine, tables=[m.__table__ for m in models])  # type: ignore[attr-defined]


def _v1_initial(engine: Engine) -> None:
    _create(engine, tables.CareModelVersion, tables.Lead, tables.EventRow, tables.Enrolment, tables.OutboxRow,
            tables.JourneyRow, tables.ScoreChangeRow, tables.Handover)


def _add_column(engine: Engine, table: str, column: str, ddl: str) -> None:
    if column not in {c["name"] for c in inspect(engine).get_columns(table)}:
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))


def _v2_channels_and_sales(engine: Engine) -> None:
    _create(engine, tables.StageChange, tables.Rep, tables.RoundRobin, tables.CrmTask, tables.CrmNote,
            tables.ScoringModelVersion)
    _add_column(engine, "leads", "bounced", "BOOLEAN NOT NULL DEFAULT false")
    _add_column(engine, "leads", "owner", "VARCHAR NOT NULL DEFAULT ''")
    _add_column(engine, "handovers", "rep_id", "VARCHAR NOT NULL DEFAULT ''")
    _add_column(engine, "handovers", "routed_by", "VARCHAR NOT NULL DEFAULT ''")


def _v3_drafts(engine: Engine) -> None:
    _create(engine, tables.Draft)


def _v4_deliveries(engine: Engine) -> None:
    _create(engine, tables.DeliveryRow, tables.Lease)


def _v5_outbox_audience_and_failures(engine: Engine) -> None:
    _add_column(engine, "outbox", "audience", "VARCHAR NOT NULL DEFAULT 'lead'")
    _add_column(engine, "outbox", "failures", "INTEGER NOT NULL DEFAULT 0")


def _v6_accounts_audit_privacy(engine: Engine) -> None:
    _create(engine, tables.User, tables.AuthSession, tables.ApiToken, tables.AuditRow, tables.UsedLink,
            tables.SignInFailure, tables.Suppression, tables.PublishRequest)


def _v7_draft_history(engine: Engine) -> None:
    _create(engine, tables.DraftRevision)
    _add_column(engine, "drafts", "position", "INTEGER NOT NULL DEFAULT 0")
    _add_column(engine, "drafts", "archived_at", "FLOAT")


def _v8_leads_in(engine: Engine) -> None:
    _create(engine, tables.Site, tables.Visitor, tables.PageView, tables.Form, tables.FormSubmission,
            tables.Segment, tables.SegmentMember, tables.BulkEnrolment, tables.LeadAlias)


def _v9_rollups(engine: Engine) -> None:
    _create(engine, tables.StepRollup, tables.ArmRollup)
    _add_column(engine, "enrolments", "at_version", "INTEGER NOT NULL DEFAULT 0")
    _add_column(engine, "enrolments", "at_step", "VARCHAR NOT NULL DEFAULT ''")
    for column in ("opened_at", "clicked_at", "unsubscribed_at"):
        _add_column(engine, "outbox", column, "FLOAT")
    with engine.begin() as conn:
        conn.execute(text("CREATE INDEX IF NOT EXISTS ix_outbox_care_model_step ON outbox (care_model, step)"))
        conn.execute(text("CREATE INDEX IF NOT EXISTS ix_enrolments_care_model_status ON enrolments "
                          "(care_model, status)"))
        rollups.rebuild(conn)


# Append only: each entry runs once per database, in order, and is never edited after release. Version 1
# creates tables from the models of its day, so later steps add what is missing rather than assume.
MIGRATIONS: list[Callable[[Engine], None]] = [_v1_initial, _v2_channels_and_sales, _v3_drafts, _v4_deliveries,
                                               _v5_outbox_audience_and_failures, _v6_accounts_audit_privacy,
                                               _v7_draft_history, _v8_leads_in, _v9_rollups]


class SchemaBehind(RuntimeError):
    """The database was made by older code: its schema changes have not been applied yet."""


def schema_version(engine: Engine) -> int:
    if "nurture_schema" not in inspect(engine).get_table_names():
        return 0
    with engine.begin() as conn:
        return conn.execute(text("SELECT MAX(version) FROM nurture_schema")).scalar() or 0


def require_current(engine: Engine) -> None:
    """For processes that must not change the schema themselves (many web and worker processes)."""
    found = schema_version(engine)
    if found < len(MIGRATIONS):
        raise SchemaBehind(f"the database schema is at version {found} and this Nurture needs {len(MIGRATIONS)}: "
                           f"run `nurture migrate` once, then start the web and worker processes")


def migrate(engine: Engine) -> int:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS nurture_schema (version INTEGER NOT NULL)"))
        current = conn.execute(text("SELECT MAX(version) FROM nurture_schema")).scalar() or 0
    for number, step in enumerate(MIGRATIONS[current:], start=current + 1):
        step(engine)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO nurture_schema (version) VALUES (:v)"), {"v": number})
    return len(MIGRATIONS)
