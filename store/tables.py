"""The app's tables. Temporal owns run state; these hold what people look at and what must not repeat."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class CareModelVersion(SQLModel, table=True):
    __tablename__ = "care_model_versions"
    __table_args__ = (UniqueConstraint("care_model", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    care_model: str = Field(index=True)
    version: int
    name: str
    hash: str
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    plan: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    published_at: datetime = Field(default_factory=utcnow)


class Lead(SQLModel, table=True):
    __tablename__ = "leads"
    id: str = Field(primary_key=True)
    email: str = ""
    timezone: str = ""
    stage: str = "suspect"
    fit: float = 0.0
    engagement: float = 0.0
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    unsubscribed: bool = False
    bounced: bool = False
    owner: str = ""  # the account owner's rep id, for account-owner routing
    created_at: datetime = Field(default_factory=utcnow)


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    id: str = Field(primary_key=True)
    lead_id: str = Field(index=True)
    type: str
    at: float
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Enrolment(SQLModel, table=True):
    __tablename__ = "enrolments"
    enrolment: str = Field(primary_key=True)
    workflow_id: str = Field(index=True)
    care_model: str = Field(index=True)
    version: int
    lead_id: str = Field(index=True)
    status: str = "running"
    outcome: str = ""
    started_at: datetime = Field(default_factory=utcnow)
    ended_at: float | None = None
    at_version: int = 0  # where the run last recorded itself: the report's "here now"
    at_step: str = ""


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    key: str = Field(primary_key=True)
    lead_id: str = Field(index=True)
    care_model: str
    step: str
    channel: str
    connector: str
    status: str  # sending | retrying | sent | dry_run | skipped | bounced | failed | uncertain
    reason: str = ""
    at: float
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    external_id: str = ""
    audience: str = "lead"  # lead: consent and frequency caps apply | team: a rep or manager, they do not
    failures: int = 0  # attempts the provider refused before anything could have been delivered
    opened_at: float | None = None  # the first open, click, unsubscribe that named this message
    clicked_at: float | None = None
    unsubscribed_at: float | None = None


class JourneyRow(SQLModel, table=True):
    __tablename__ = "journey"
    key: str = Field(primary_key=True)
    enrolment: str = Field(index=True)
    lead_id: str = Field(index=True)
    care_model: str
    version: int
    seq: int
    step: str
    kind: str
    at: float
    outcome: str
    why: str = ""


class ScoreChangeRow(SQLModel, table=True):
    __tablename__ = "score_changes"
    key: str = Field(primary_key=True)
    lead_id: str = Field(index=True)
    score: str
    delta: float
    reason: str
    at: float


class Handover(SQLModel, table=True):
    __tablename__ = "handovers"
    key: str = Field(primary_key=True)
    lead_id: str = Field(index=True)
    care_model: str
    step: str
    team: str
    routing: str
    note: str = ""
    status: str = "open"
    reason: str = ""
    opened_at: float
    due_at: float
    closed_at: float | None = None
    rep_id: str = ""
    routed_by: str = ""


class StageChange(SQLModel, table=True):
    __tablename__ = "stage_changes"
    id: int | None = Field(default=None, primary_key=True)
    lead_id: str = Field(index=True)
    from_stage: str
    to_stage: str
    at: float
    reason: str = ""


class Rep(SQLModel, table=True):
    __tablename__ = "reps"
    id: str = Field(primary_key=True)
    name: str
    email: str
    team: str = Field(index=True)
    territories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    manager: bool = False
    active: bool = True


class RoundRobin(SQLModel, table=True):
    __tablename__ = "round_robin"
    team: str = Field(primary_key=True)
    turns: int = 0


class CrmTask(SQLModel, table=True):
    __tablename__ = "crm_tasks"
    key: str = Field(primary_key=True)
    lead_id: str = Field(index=True)
    owner: str = ""
    text: str
    status: str = "open"
    at: float


class CrmNote(SQLModel, table=True):
    __tablename__ = "crm_notes"
    key: str = Field(primary_key=True)
    lead_id: str = Field(index=True)
    text: str
    at: float


class ScoringModelVersion(SQLModel, table=True):
    __tablename__ = "scoring_models"
    version: int = Field(primary_key=True)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    published_at: datetime = Field(default_factory=utcnow)


class Draft(SQLModel, table=True):
    """The care model as the marketer is editing it: any document, valid or not, saved on every change."""

    __tablename__ = "drafts"
    care_model: str = Field(primary_key=True)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)
    position: int = 0  # the revision this draft is at: undo goes one back, redo one on
    archived_at: float | None = None  # hidden from the list, and takes no new leads


class DraftRevision(SQLModel, table=True):
    """One saved state of a draft, so that every edit can be undone (and redone) from any browser."""

    __tablename__ = "draft_revisions"
    __table_args__ = (UniqueConstraint("care_model", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    care_model: str = Field(index=True)
    seq: int
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    what: str = ""
    by: str = ""
    at: float = 0


class DeliveryRow(SQLModel, table=True):
    """Something Temporal must be told for a lead: an event for a run, an enrolment, a migration.

    Written in the transaction that accepts the cause, marked done only once Temporal has taken it."""

    __tablename__ = "deliveries"
    id: int | None = Field(default=None, primary_key=True)  # the order of delivery, per lead
    key: str = Field(unique=True)
    lead_id: str = Field(index=True)
    kind: str  # signal | enrol | migrate
    workflow_id: str = ""
    care_model: str = ""
    event: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", index=True)  # pending | done
    outcome: str = ""
    attempts: int = 0
    last_error: str = ""
    created_at: float
    done_at: float | None = None


class Lease(SQLModel, table=True):
    """Who runs a once-per-deployment loop right now; another process takes over when it expires."""

    __tablename__ = "leases"
    name: str = Field(primary_key=True)
    holder: str
    expires_at: float


class User(SQLModel, table=True):
    """A person who signs in. No password hash: invited and not yet set, or signing in through single sign-on."""

    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True)  # kept lower-case
    name: str = ""
    role: str
    password_hash: str = ""
    rep_id: str = ""  # sales roles: the rep whose handovers are theirs
    active: bool = True
    created_at: float


class AuthSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a signed random id; only its hash is kept here."""

    __tablename__ = "auth_sessions"
    id: str = Field(primary_key=True)
    user_id: int = Field(index=True)
    csrf: str
    created_at: float
    expires_at: float


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"
    id: str = Field(primary_key=True)  # the public part, shown in lists: nrt_<id>_...
    name: str
    hash: str  # SHA-256 of the whole token: tokens are long and random, so a slow hash adds nothing
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None


class AuditRow(SQLModel, table=True):
    """Append-only: who did what to which object, and when. Nothing updates or deletes these rows."""

    __tablename__ = "audit"
    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(index=True)
    actor: str = Field(index=True)
    action: str
    object: str = Field(index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class UsedLink(SQLModel, table=True):
    """A single-use link that has been used."""

    __tablename__ = "used_links"
    jti: str = Field(primary_key=True)
    used_at: float


class SignInFailure(SQLModel, table=True):
    __tablename__ = "sign_in_failures"
    key: str = Field(primary_key=True)  # "email:..." or "ip:..."
    failures: int = 0
    last_at: float = 0
    locked_until: float = 0


class Suppression(SQLModel, table=True):
    """An erased lead: only hashes of its address and id, so re-importing either never emails it again."""

    __tablename__ = "suppressions"
    hash: str = Field(primary_key=True)
    kind: str  # email | lead
    at: float


class PublishRequest(SQLModel, table=True):
    """A marketer's request to publish one exact draft; an edit to the draft after it voids the request."""

    __tablename__ = "publish_requests"
    id: int | None = Field(default=None, primary_key=True)
    care_model: str = Field(index=True)
    hash: str
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    requested_by: str
    requested_at: float
    status: str = "waiting"  # waiting | published | voided | declined
    decided_by: str = ""
    decided_at: float | None = None
    note: str = ""


class Site(SQLModel, table=True):
    """A website that runs the tracker and hosts forms. Its key is public and can only write page views."""

    __tablename__ = "sites"
    id: str = Field(primary_key=True)
    name: str
    key: str = Field(unique=True)  # nsk_...: in the site's pages for anyone to read
    origins: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    require_consent: bool = False  # the tracker waits for the page to say the visitor agreed
    created_at: float


class Visitor(SQLModel, table=True):
    """An anonymous browser on a site, known by the first-party id the tracker keeps, until a form names it."""

    __tablename__ = "visitors"
    id: str = Field(primary_key=True)  # "<site>:<visitor id>"
    site: str = Field(index=True)
    lead_id: str = Field(default="", index=True)
    source: str = ""
    source_why: str = ""
    utm: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    referrer: str = ""
    first_seen: float
    last_seen: float


class PageView(SQLModel, table=True):
    __tablename__ = "page_views"
    id: str = Field(primary_key=True)  # sent by the tracker, so a beacon sent twice is kept once
    visitor: str = Field(index=True)
    site: str
    url: str
    title: str = ""
    referrer: str = ""
    at: float


class Form(SQLModel, table=True):
    __tablename__ = "forms"
    id: str = Field(primary_key=True)
    site: str
    name: str
    fields: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    consent_text: str = ""
    double_opt_in: bool = False
    thanks: str = "Thank you."
    redirect: str = ""  # where the visitor goes after submitting; empty: Nurture's own thank-you page
    created_at: float


class FormSubmission(SQLModel, table=True):
    """What a visitor sent, kept as proof of consent: the text they agreed to, when, and when they confirmed."""

    __tablename__ = "form_submissions"
    id: str = Field(primary_key=True)
    form: str = Field(index=True)
    visitor: str = ""
    email: str = Field(index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    consent_text: str = ""
    consented: bool = False
    at: float
    client: str = ""  # the address it came from, as proof
    status: str = "confirmed"  # unconfirmed (double opt-in email sent) | confirmed
    confirmed_at: float | None = None
    lead_id: str = ""


class Segment(SQLModel, table=True):
    """A saved condition over leads; membership is kept so that joining can start care models."""

    __tablename__ = "segments"
    id: str = Field(primary_key=True)
    name: str
    condition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # as the marketer wrote it
    compiled: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # as it is evaluated
    created_by: str = ""
    updated_at: float


class SegmentMember(SQLModel, table=True):
    __tablename__ = "segment_members"
    segment: str = Field(primary_key=True)
    lead_id: str = Field(primary_key=True, index=True)
    joined_at: float


class BulkEnrolment(SQLModel, table=True):
    """A segment enrolled into a care model, page by page at a set rate; `cursor` is how far it has come."""

    __tablename__ = "bulk_enrolments"
    id: str = Field(primary_key=True)
    segment: str = Field(index=True)
    care_model: str
    total: int
    done: int = 0
    cursor: str = ""  # the last lead id handed over; a resumed job goes on after it
    by: str = ""
    started_at: float
    finished_at: float | None = None


class LeadAlias(SQLModel, table=True):
    """A lead merged into another: events and calls that still name it reach the lead it became."""

    __tablename__ = "lead_aliases"
    alias: str = Field(primary_key=True)
    lead_id: str = Field(index=True)
    at: float
    by: str = ""


class StepRollup(SQLModel, table=True):
    """A care model's running totals per step and version, kept as runs record their steps (engine.rollups)."""

    __tablename__ = "step_rollups"
    care_model: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    step: str = Field(primary_key=True)
    day: str = Field(primary_key=True)  # the UTC day the runs started: reports pick leads by when they entered
    kind: str = ""
    entered: int = 0
    passed: int = 0
    exited: int = 0
    converted: int = 0
    waits: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # bucket -> runs


class ArmRollup(SQLModel, table=True):
    __tablename__ = "arm_rollups"
    care_model: str = Field(primary_key=True)
    step: str = Field(primary_key=True)
    arm: str = Field(primary_key=True)
    day: str = Field(primary_key=True)
    leads: int = 0
    converted: int = 0
