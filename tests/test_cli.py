"""The `nurture` command as a marketer or CI job runs it: validate and simulate, with readable errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nurture.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MODELS = sorted(EXAMPLES.glob("*.yaml"))


def next_monday_6am() -> str:
    now = datetime.now(UTC) + timedelta(days=7)
    monday = (now + timedelta(days=(7 - now.weekday()) % 7)).replace(hour=6, minute=0, second=0, microsecond=0)
    return monday.isoformat()


def simulate(capsys: pytest.CaptureFixture[str], model: str, lead: str, events: str | None = None) -> dict:
    args = ["simulate", str(EXAMPLES / model), "--lead", str(EXAMPLES / "leads" / lead), "--json",
            "--start", next_monday_6am()]
    if events:
        args += ["--events", str(EXAMPLES / "events" / events)]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_examples_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(MODELS) >= 3
    assert main(["validate", *map(str, MODELS)]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok") == len(MODELS)


def test_validate_lists_every_problem_with_file_line_step_and_field(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "welcome-nurture.yaml").read_text()
                   .replace("duration: 2d", "duration: two days")
                   .replace("timeout: 5d", "timeout: 5d\n    on_evnt: engaged"))
    assert main(["validate", str(bad)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(f"{bad}:" in line and "step 'pause-2d', field 'duration': cannot read duration 'two days'" in line
               for line in lines), lines
    assert any("step 'await-click', field 'on_evnt': Extra inputs are not permitted" in line for line in lines)
    assert len(lines) == 2


def test_welcome_nurture_simulation_follows_the_click(capsys: pytest.CaptureFixture[str]) -> None:
    result = simulate(capsys, "welcome-nurture.yaml", "suspect.yaml", "welcome-clicks.yaml")
    assert result["outcome"] == "exit:welcome series finished"
    assert [d["subject"] for d in result["deliveries"]] == [
        "Your guide, Ada", "Three ways teams use the guide", "How Acme cut onboarding time in half"]
    steps = [(s["step"], s["outcome"]) for s in result["steps"]]
    assert ("await-click", "got email.clicked") in steps and ("engaged", "engagement +15") in steps
    # Monday 06:00 UTC is 07:00 in Berlin: the welcome waits for the 08:00 send window.
    first_send = next(s for s in result["steps"] if s["kind"] == "email")
    assert first_send["offset"] == 3600


def test_welcome_nurture_without_clicks_takes_the_subject_test(capsys: pytest.CaptureFixture[str]) -> None:
    result = simulate(capsys, "welcome-nurture.yaml", "suspect.yaml")
    steps = {s["step"]: s for s in result["steps"]}
    assert steps["await-click"]["outcome"] == "timed out"
    assert steps["subject-test"]["outcome"] in ("holdout", "variant 'question'", "variant 'benefit'")
    if steps["subject-test"]["outcome"] != "holdout":
        morning = datetime.fromisoformat(steps["last-call"]["at"] + "+00:00").astimezone(ZoneInfo("Europe/Berlin"))
        assert (morning.hour, morning.minute) == (9, 0) and morning.weekday() in (1, 2, 3)


def test_executive_nurture_hands_over_and_sales_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    result = simulate(capsys, "executive-nurture.yaml", "executive.yaml", "executive-hot.yaml")
    steps = [(s["step"], s["outcome"]) for s in result["steps"]]
    assert ("hot", "took 'sales-ready'") in steps
    assert ("to-sales", "accepted") in steps
    assert result["outcome"] == "exit:accepted by sales"
    assert [(d["step"], d["channel"]) for d in result["deliveries"]] == [
        ("intro", "email"), ("connect", "social"), ("to-sales", "crm"), ("accepted", "crm")]


def test_cross_sell_routes_a_pricing_visit_to_the_account_owner(capsys: pytest.CaptureFixture[str]) -> None:
    result = simulate(capsys, "customer-cross-sell.yaml", "customer.yaml", "customer-pricing.yaml")
    steps = [(s["step"], s["outcome"]) for s in result["steps"]]
    assert ("await-pricing", "got page.visited") in steps
    assert ("to-owner", "expired") in steps
    assert result["deliveries"][1]["subject"] == "Analytics is now available on your Team plan"


def test_user_mistakes_are_one_line_errors_not_tracebacks(tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text("- {after: soon, type: email.clicked}\n")
    lead = tmp_path / "lead.yaml"
    lead.write_text("id: x\ntimezone: Mars/Base\n")
    cases = [
        (["--lead", str(tmp_path / "missing.yaml")], "missing.yaml: no such file"),
        (["--lead", str(lead)], "field 'timezone': unknown time zone 'Mars/Base'"),
        (["--lead", str(EXAMPLES / "leads" / "suspect.yaml"), "--events", str(events)],
         "event #1, field 'after': cannot read duration 'soon'"),
    ]
    for extra, expected in cases:
        run = subprocess.run([sys.executable, "-m", "nurture.cli", "simulate", str(MODELS[0]), *extra],
                             capture_output=True, text=True, cwd=ROOT)
        assert run.returncode == 2, run.stderr
        assert expected in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_schema_command_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Nurture care model"


def test_with_auto_migrate_off_web_waits_for_nurture_migrate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NURTURE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NURTURE_AUTO_MIGRATE", "false")
    assert main(["web"]) == 1
    refused = capsys.readouterr().err
    assert "the database schema is at version 0" in refused and "run `nurture migrate` once" in refused
    assert main(["migrate"]) == 0
    assert "database schema at version" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_operators_add_users_and_tokens_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from store.accounts import Accounts
    from store.audit import Audit
    from store.store import Store

    monkeypatch.setenv("NURTURE_DATA_DIR", str(tmp_path))
    assert main(["users", "add", "Mia@Acme.test", "--role", "marketer", "--name", "Mia"]) == 0
    invite = capsys.readouterr().out.splitlines()[-1]
    assert invite.startswith("http://127.0.0.1:8000/password/invite/")
    assert main(["users", "add", "mia@acme.test", "--role", "viewer"]) == 2
    assert "there is already a user 'mia@acme.test'" in capsys.readouterr().err
    assert main(["users", "list"]) == 0
    assert "mia@acme.test" in (listed := capsys.readouterr().out) and "no password yet" in listed
    assert main(["users", "reset", "mia@acme.test"]) == 0
    assert "/password/reset/" in capsys.readouterr().out

    assert main(["tokens", "add", "website forms", "--scope", "events:write"]) == 0
    token = capsys.readouterr().out.strip()
    store = Store.open(f"sqlite:///{tmp_path / 'nurture.db'}")
    row = Accounts(store).token(token)
    assert row is not None and row.scopes == ["events:write"] and row.name == "website forms"
    assert main(["tokens", "list"]) == 0
    assert f"{row.id}" in (listed := capsys.readouterr().out) and token not in listed, "never shown again"
    assert main(["tokens", "revoke", token]) == 0
    assert Accounts(store).token(token) is None
    assert [a.action for a in Audit(store).find()] == ["token.revoked", "token.created", "password.reset_link",
                                                       "user.created"]
