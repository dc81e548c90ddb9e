"""docker-compose.yml stays a valid Compose file for real use: no secret has a default, Temporal's schema comes
from its admin tools, the app's schema is migrated once before web and workers, and the web runs behind a proxy."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "NURTURE_DB_PASSWORD": "app-secret", "TEMPORAL_DB_PASSWORD": "t-secret",
           "NURTURE_SECRET_KEY": "k" * 32, "NURTURE_PUBLIC_URL": "https://nurture.example.com"}


def config(env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    checker = shutil.which("docker-compose")
    assert checker, "docker-compose is missing: run `scripts/setup --test`"
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    empty = tmp / "empty.env"  # instead of a developer's own .env, which must not make the no-secrets case pass
    empty.write_text("")
    return subprocess.run([checker, "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(empty), "config"],
                          capture_output=True, text=True, env=clean | env)


def test_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    missing = config({}, tmp_path)
    assert missing.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in missing.stderr


def test_compose_wires_web_and_workers_to_temporal_and_postgres_with_the_secrets_given(tmp_path: Path) -> None:
    rendered = config(SECRETS, tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    services = yaml.safe_load(rendered.stdout)["services"]
    assert "auto-setup" not in rendered.stdout, "Temporal's schema is set up by its admin tools"
    assert services["temporal-schema"]["image"].startswith("temporalio/admin-tools")
    assert services["temporal"]["image"].startswith("temporalio/server")
    for name in ("web", "worker"):
        env = services[name]["environment"]
        assert env["NURTURE_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["NURTURE_DATABASE_URL"] == "postgresql+psycopg://nurture:app-secret@postgresql:5432/nurture"
        assert (env["NURTURE_SECRET_KEY"], env["NURTURE_AUTO_MIGRATE"]) == ("k" * 32, "false")
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["nurture", "migrate"]
    assert services["worker"]["command"] == ["nurture", "worker"]
    assert "ports" not in services["web"], "web is reached through the proxy, so it can be scaled"
    assert services["proxy"]["ports"][0]["published"] in (8000, "8000")
