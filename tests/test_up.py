"""`nurture up` as an operator runs it: embedded Temporal dev server, worker and web app; runs survive a restart."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.access import SCOPES

MODEL = {
    "id": "slow-drip", "name": "Slow drip", "start": "hello",
    "steps": [
        {"id": "hello", "kind": "email", "subject": "Hello {{ lead.first_name }}", "body": "Hi", "next": "month"},
        {"id": "month", "kind": "wait", "duration": "30d", "next": "again"},
        {"id": "again", "kind": "email", "subject": "A month later", "body": "Hi again"},
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The API token each running Nurture's tests use, by its URL (made with `nurture tokens add` before it starts).
TOKENS: dict[str, str] = {}


def auth(url: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[url]}"}


class Nurture:
    def __init__(self, data_dir: Path) -> None:
        self.env = {**os.environ, "NURTURE_DATA_DIR": str(data_dir), "NURTURE_WEB_PORT": str(free_port()),
                    "NURTURE_TEMPORAL_PORT": str(free_port()), "NURTURE_TEMPORAL_UI_PORT": str(free_port())}
        self.url = f"http://127.0.0.1:{self.env['NURTURE_WEB_PORT']}"
        self.log = data_dir.parent / "nurture-up.log"
        self.command = [sys.executable, "-m", "nurture.cli", "up"]
        self.cwd: Path | None = None

    def start(self) -> subprocess.Popen[bytes]:
        if self.url not in TOKENS:
            TOKENS[self.url] = self.cli("tokens", "add", "tests", *(a for s in SCOPES for a in ("--scope", s)))
        with self.log.open("ab") as log:
            proc = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        proc.kill()
        pytest.fail(f"nurture up did not become healthy:\n{self.log.read_text()}")

    def first_run_link(self) -> str:
        found = re.findall(r"(http://\S+/setup/\S+)", self.log.read_text())
        assert found, f"nurture up prints a first-run link while no one can sign in:\n{self.log.read_text()}"
        return found[-1]

    def cli(self, *args: str) -> str:
        run = subprocess.run([*self.command[:-1], *args], env=self.env, cwd=self.cwd, capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.fixture
def nurture(tmp_path: Path) -> Iterator[Nurture]:
    yield Nurture(tmp_path / "data")


def wait_for(predicate: object, seconds: float = 20) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.3)
    pytest.fail("condition not met in time")


def test_up_runs_everything_and_a_waiting_lead_survives_a_restart(nurture: Nurture) -> None:
    proc = nurture.start()
    try:
        assert "Set up Nurture" in httpx.get(nurture.first_run_link()).text
        refused = httpx.post(f"{nurture.url}/api/care-models", json=MODEL)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        token = nurture.cli("tokens", "add", "ops", "--scope", "care-models:publish", "--scope", "leads:write",
                            "--scope", "leads:read")
        api = httpx.Client(base_url=nurture.url, headers={"Authorization": f"Bearer {token}"})
        assert api.post("/api/care-models", json=MODEL).status_code == 201
        lead = {"id": "lead-1", "email": "ada@example.com", "attributes": {"first_name": "Ada"}}
        assert api.put("/api/leads/lead-1", json=lead).status_code == 200
        enrolled = api.post("/api/care-models/slow-drip/enrolments", json={"lead_id": "lead-1"})
        assert enrolled.json()["status"] == "started"
        where = wait_for(lambda: [w for w in api.get("/api/leads/lead-1/where").json() if w["step"] == "month"])
        assert where[0]["state"] == "waiting"  # type: ignore[index]
    finally:
        nurture.stop(proc)

    data = Path(nurture.env["NURTURE_DATA_DIR"])
    assert (data / "temporal.db").stat().st_size > 0 and (data / "nurture.db").exists()

    proc = nurture.start()
    try:
        where = api.get("/api/leads/lead-1/where").json()
        assert [(w["step"], w["state"]) for w in where] == [("month", "waiting")]
        journey = api.get("/api/leads/lead-1/journey").json()
        assert [(d["step"], d["status"], d["payload"]["subject"]) for d in journey["deliveries"]] == [
            ("hello", "dry_run", "Hello Ada")]
    finally:
        nurture.stop(proc)
