"""The `nurture` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from designer.assets import AssetsMissing
from engine.access import ROLES, SCOPES
from engine.changes import diff_lines
from engine.document import json_schema
from engine.validator import DocumentError, Problem
from nurture.files import InputError, load_document, read_document, read_events, read_lead, read_reps
from nurture.settings import Settings
from store.db import SchemaBehind

if TYPE_CHECKING:
    from store.accounts import Accounts
    from store.store import Store


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nurture", description="B2B lead nurturing on Temporal")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run Temporal (embedded unless NURTURE_TEMPORAL_ADDRESS), worker and web app")
    sub.add_parser("worker", help="run a worker against NURTURE_TEMPORAL_ADDRESS")
    sub.add_parser("web", help="run the web app")
    p = sub.add_parser("validate", help="check care-model documents and list every problem")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p = sub.add_parser("simulate", help="run a care model for a sample lead on the time-skipping test server")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--lead", required=True, metavar="FILE", help="sample lead (YAML or JSON)")
    p.add_argument("--events", metavar="FILE", help="scripted events: [{after: 2d, type: email.clicked}, ...]")
    p.add_argument("--days", type=int, default=400, help="stop simulating after this many days")
    p.add_argument("--start", type=_future_time, metavar="ISO", help="simulated start, e.g. 2027-01-04T08:00Z")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--history", metavar="FILE", help="also save the run's Temporal event history (for replay)")
    p.add_argument("--with", dest="others", action="append", default=[], metavar="PATH",
                   help="another care model a move step leads to: the lead is followed into it (repeatable)")
    p.add_argument("--reps", metavar="FILE", help="sales reps (YAML list of id, email, team) so handovers route")
    p = sub.add_parser("publish", help="publish care-model documents as new versions")
    p.add_argument("paths", nargs="+", metavar="PATH")
    sub.add_parser("schema", help="print the care-model JSON Schema")
    sub.add_parser("migrate", help="apply the app database's schema changes (once, before new code serves)")
    p = sub.add_parser("connectors", help="installed connectors and the channels configured for them")
    p.add_argument("action", choices=["list", "verify"], help="list: what is installed; verify: check the config")
    p = sub.add_parser("users", help="people who sign in: add (prints an invitation link), list, reset")
    users = p.add_subparsers(dest="action", required=True)
    p = users.add_parser("add", help="add a user and print a one-time link to choose a password")
    p.add_argument("email")
    p.add_argument("--role", required=True, choices=list(ROLES))
    p.add_argument("--name", default="")
    p.add_argument("--rep-id", default="", help="sales roles: the rep id whose handovers are theirs")
    users.add_parser("list", help="every user, role and state")
    p = users.add_parser("reset", help="print a one-time password reset link for a user")
    p.add_argument("email")
    p = sub.add_parser("import", help="bring leads in from a CSV file (a header line, then a lead per line)")
    p.add_argument("what", choices=["leads"])
    p.add_argument("file", help="CSV: columns named id or email at least; other columns become attributes")
    p.add_argument("--enrol", metavar="CARE_MODEL", help="also enrol every imported lead in this care model")
    p = sub.add_parser("backup", help="copy the app database into a folder (safe while Nurture runs)")
    p.add_argument("folder")
    p = sub.add_parser("restore", help="replace the app database with a backup (stop Nurture first)")
    p.add_argument("folder")
    p = sub.add_parser("tokens", help="API tokens for integrations: add (prints it once), list, revoke")
    tokens = p.add_subparsers(dest="action", required=True)
    p = tokens.add_parser("add", help="create a token with the given scopes")
    p.add_argument("name")
    p.add_argument("--scope", action="append", required=True, choices=SCOPES, metavar="SCOPE",
                   help=f"repeatable; one of {', '.join(SCOPES)}")
    tokens.add_parser("list", help="every token, its scopes and when it was last used")
    p = tokens.add_parser("revoke", help="stop a token working at once")
    p.add_argument("id", help="the token id (nrt_<id>_...)")
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (InputError, DocumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (AssetsMissing, SchemaBehind) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _backup(args: argparse.Namespace) -> int:
    from store.backup import backup

    settings = Settings()
    try:
        written = backup(settings.db_url, Path(args.folder))
    except (OSError, subprocess.CalledProcessError) as exc:
        raise InputError(f"backup failed: {getattr(exc, 'stderr', '') or exc}") from None
    print(f"backed up {settings.db_url} to {written}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from store.backup import restore

    settings = Settings()
    try:
        source = restore(settings.db_url, Path(args.folder))
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        raise InputError(f"restore failed: {getattr(exc, 'stderr', '') or exc}") from None
    print(f"restored {settings.db_url} from {source}; start Nurture again")
    return 0


def _future_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: use ISO 8601, e.g. 2027-01-04T08:00:00Z") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone, e.g. 2027-01-04T08:00:00Z")
    return value


def _up(_: argparse.Namespace) -> int:
    from nurture.services import up
    from nurture.supervise import PartFailed

    try:
        asyncio.run(up(Settings()))
    except PartFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        _exit_now(1)
    _exit_now(0)
    return 0


def _worker(_: argparse.Namespace) -> int:
    from nurture.jobs import scheduler
    from nurture.services import connect, run_worker
    from store.store import Store
    from workflows.redelivery import redeliver_forever

    async def go() -> None:
        settings = Settings()
        store, client = Store.open(settings.db_url, settings.auto_migrate), await connect(settings)
        # Periodic jobs are idempotent, so every worker may run them; one per deployment is enough.
        jobs = scheduler(store, client)
        jobs.start()
        # Every worker runs the redelivery loop; its lease lets one at a time deliver.
        redelivery = asyncio.create_task(redeliver_forever(client, store, settings.task_queue))
        try:
            await run_worker(settings, store, client)
        finally:
            redelivery.cancel()
            jobs.shutdown(wait=False)

    asyncio.run(go())
    _exit_now(0)
    return 0


def _exit_now(code: int) -> None:
    """Ends a long-running command once every part has shut down, skipping interpreter finalization: temporalio's
    Rust runtime threads can still call into Python while it is torn down ('Fatal Python error:
    PyGILState_Release'), which turned a clean stop into exit status -6 about once in twenty runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _web(_: argparse.Namespace) -> int:
    from nurture.services import run_web

    asyncio.run(run_web(Settings()))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from engine.advice import advice

    failed = 0
    for path in args.paths:
        doc, problems = load_document(path)
        for problem in problems:
            print(_located(path, problem))
        if problems or doc is None:
            failed += 1
            continue
        warnings = advice(doc, Settings().declared_events)
        for warning in warnings:
            print(_located(path, warning, "warning: "))
        print(f"{path}: ok — '{doc.id}' with {len(doc.steps)} steps" + (f", {len(warnings)} warning(s)"
                                                                         if warnings else ""))
    return 1 if failed else 0


def _located(path: str, problem: Problem, label: str = "") -> str:
    line = f":{problem.line}" if problem.line else ""
    where = f"{problem.location()}: " if problem.location() else ""
    return f"{path}{line}: {label}{where}{problem.message}"


def _simulate(args: argparse.Namespace) -> int:
    from store.tables import Rep
    from workflows.simulate import format_offset, parse_script, simulate

    doc = read_document(args.path)
    lead = read_lead(args.lead)
    others = [read_document(path) for path in args.others]
    reps = [Rep(**r.model_dump()) for r in read_reps(args.reps)] if args.reps else []
    try:
        script = parse_script(read_events(args.events) if args.events else [])
    except ValueError as exc:
        raise InputError(f"{args.events}: {exc}") from None
    try:
        result = asyncio.run(simulate(doc, lead.to_state(), script, lead.unsubscribed, args.days * 86400,
                                      args.start, others, reps))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if args.history:
        Path(args.history).write_text(result.history, encoding="utf-8")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(f"Simulating '{doc.id}' for lead {lead.id}")
    for s in result.steps:
        why = f" — {s.why}" if s.why else ""
        local = f" ({s.local[11:]})" if s.local != s.at else ""  # the lead's clock: HH:MM and zone
        step = s.step if s.care_model == doc.id else f"{s.care_model}/{s.step}"
        print(f"  {format_offset(s.offset):>11}  {s.at} UTC{local}  {step:<18} {s.kind:<11} {s.outcome}{why}")
    for event in result.unmatched:
        print(f"  note: event {event} arrived, but nothing in this care model listens for it")
    print(f"Outcome: {result.outcome}. {len(result.deliveries)} deliveries, "
          f"simulated in {result.wall_seconds:.2f}s")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from store.audit import Audit
    from store.store import Store

    store = Store.open(Settings().db_url)
    for path in args.paths:
        doc = read_document(path)
        before = store.latest(doc.id)
        row = store.publish(doc)
        if before is None or before.version != row.version:
            Audit(store).add(_operator(), "care-model.published", f"care-model:{row.care_model}", version=row.version,
                             diff=diff_lines(before.document if before else None, row.document))
        print(f"{path}: published '{row.care_model}' version {row.version} ({row.hash[:12]})")
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from store.db import make_engine, migrate, schema_version

    engine = make_engine(Settings().db_url)
    before = schema_version(engine)
    after = migrate(engine)
    print(f"database schema at version {after}" + (f" (was {before})" if before != after else ", nothing to do"))
    return 0


def _schema(_: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0


def _connectors(args: argparse.Namespace) -> int:
    from connectors.base import ConnectorError
    from connectors.registry import available, from_settings, read_config
    from store.store import Store

    settings = Settings()
    try:
        configured = read_config(settings.connectors_file)
    except ConnectorError as exc:
        raise InputError(str(exc)) from None
    if args.action == "list":
        print(f"{'name':<13} {'channel':<8} {'configured for':<15} settings")
        for name, cls in sorted(available().items()):
            channels = ", ".join(c for c, cfg in configured.items() if cfg.get("connector") == name) or "-"
            fields = ", ".join(f"{f}{'' if info.is_required() else '?'}" for f, info in cls.Config.model_fields.items())
            print(f"{name:<13} {cls.channel:<8} {channels:<15} {fields}")
        state = "found" if configured else "absent: every channel dry-run"
        print(f"\nConfiguration: {settings.connectors_file} ({state})")
        return 0
    try:
        built = from_settings(settings, Store.open(settings.db_url, settings.auto_migrate))
    except ConnectorError as exc:
        raise InputError(str(exc)) from None
    failed = 0
    for channel, connector in built.items():
        try:
            connector.verify()
            print(f"{channel:<8} {connector.name:<12} ok")
        except ConnectorError as exc:
            failed += 1
            print(f"{channel:<8} {connector.name:<12} FAILED: {exc}")
    return 1 if failed else 0


def _operator() -> str:
    return f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'operator'}"


def _people() -> tuple[Settings, Store, Accounts]:
    """What `nurture users` and `nurture tokens` work on."""
    from store.accounts import Accounts
    from store.store import Store

    settings = Settings()
    store = Store.open(settings.db_url, settings.auto_migrate)
    return settings, store, Accounts(store)


def _users(args: argparse.Namespace) -> int:
    from designer.signin import password_link
    from store.audit import Audit

    settings, store, people = _people()
    if args.action == "list":
        print(f"{'email':<32} {'role':<14} {'rep':<10} state")
        for u in people.users():
            state = ("active" if u.active else "deactivated") + ("" if u.password_hash else ", no password yet")
            print(f"{u.email:<32} {u.role:<14} {u.rep_id or '-':<10} {state}")
        return 0
    if args.action == "add":
        try:
            user = people.add_user(args.email, args.role, args.name, rep_id=args.rep_id)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        Audit(store).add(_operator(), "user.created", f"user:{user.email}", role=user.role, rep_id=user.rep_id)
        print(f"added {user.email} as {user.role}. Send them this link to choose a password (once, within 7 days):")
        print(password_link(settings, user, "invite"))
        return 0
    found = people.by_email(args.email)
    if found is None:
        raise InputError(f"no user '{args.email}'")
    Audit(store).add(_operator(), "password.reset_link", f"user:{found.email}")
    print(f"A one-time password reset link for {found.email} (valid for an hour):")
    print(password_link(settings, found))
    return 0


def _tokens(args: argparse.Namespace) -> int:
    from store.audit import Audit

    _, store, people = _people()
    if args.action == "list":
        print(f"{'id':<10} {'name':<24} {'last used':<17} {'state':<8} scopes")
        for t in people.tokens():
            used = datetime.fromtimestamp(t.last_used_at).strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never"
            print(f"{t.id:<10} {t.name:<24} {used:<17} {'revoked' if t.revoked_at else 'live':<8} {','.join(t.scopes)}")
        return 0
    if args.action == "revoke":
        try:
            row = people.revoke(args.id.removeprefix("nrt_").split("_")[0])
        except KeyError as exc:
            raise InputError(str(exc).strip("'")) from None
        Audit(store).add(_operator(), "token.revoked", f"token:{row.id}", name=row.name)
        print(f"revoked {row.id} ({row.name})")
        return 0
    try:
        plain, row = people.add_token(args.name, args.scope, _operator())
    except ValueError as exc:
        raise InputError(str(exc)) from None
    Audit(store).add(_operator(), "token.created", f"token:{row.id}", name=row.name, scopes=row.scopes)
    print(f"# token '{row.name}' ({', '.join(row.scopes)}); shown this once, stored only as a hash:", file=sys.stderr)
    print(plain)
    return 0


def _import(args: argparse.Namespace) -> int:
    """Leads from a CSV file, with progress on stderr; the runs hear of changes now, or (Temporal away) from the
    redelivery loop of a running `nurture up` or worker."""
    from nurture.services import connect
    from store.audit import Audit
    from workflows.imports import import_leads

    settings, store, _ = _people()
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{args.file}: {exc}") from None

    def progress(done: int, total: int) -> None:
        if done % 1000 == 0 or done == total:
            print(f"\r{done} of {total} leads", end="" if done < total else "\n", file=sys.stderr, flush=True)

    async def go() -> Any:
        try:
            client = await connect(settings, wait_seconds=2)
        except RuntimeError:
            client = None
            print(f"# Temporal is not reachable at {settings.temporal_target}: changes reach running care models "
                  "once it is", file=sys.stderr)
        return await import_leads(client, store, text, enrol=args.enrol, task_queue=settings.task_queue,
                                  progress=progress)

    try:
        report = asyncio.run(go())
    except ValueError as exc:
        raise InputError(str(exc)) from None
    Audit(store).add(_operator(), "leads.imported", "leads", rows=report.rows, created=report.created,
                     updated=report.updated, problems=len(report.problems), enrol=args.enrol)
    for problem in report.problems:
        print(f"{args.file}: {problem}")
    print(f"{report.rows} rows: {report.created} created, {report.updated} updated, {report.unchanged} unchanged"
          + (f", {report.enrolled} enrolled in {args.enrol}" if args.enrol else "")
          + (f", {report.pending} enrolments pending" if report.pending else "")
          + (f"; {len(report.problems)} problem(s) above, nothing else held back" if report.problems else ""))
    return 1 if report.problems else 0


_COMMANDS = {"up": _up, "worker": _worker, "web": _web, "validate": _validate, "simulate": _simulate,
             "publish": _publish, "schema": _schema, "migrate": _migrate,
             "connectors": _connectors, "users": _users, "tokens": _tokens, "import": _import, "backup": _backup,
             "restore": _restore}

if __name__ == "__main__":
    sys.exit(main())
