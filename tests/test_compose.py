"""docker-compose.yml stays a valid Compose file that wires the app to Temporal and PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_file_is_valid_and_wires_web_and_worker_to_temporal_and_postgres() -> None:
    checker = shutil.which("docker-compose")
    assert checker, "docker-compose is missing: run `scripts/setup --test`"
    rendered = subprocess.run([checker, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True,
                              text=True, check=True).stdout
    services = yaml.safe_load(rendered)["services"]
    assert {"postgresql", "temporal", "web", "worker"} <= set(services)
    for name in ("web", "worker"):
        env = services[name]["environment"]
        assert env["NURTURE_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["NURTURE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert services["worker"]["command"] == ["nurture", "worker"]
