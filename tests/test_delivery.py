"""An accepted event reaches every run it belongs to, exactly once, even when Temporal or the web process dies.

Runs `nurture up` against a real `temporal server start-dev` that the test kills and restarts on the same database."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from nurture.services import temporal_cli
from store.deliveries import Deliveries
from store.store import Store
from tests.test_up import Nurture, auth, free_port, wait_for

LISTEN = {"id": "listen", "name": "Listen", "start": "hello", "steps": [
    {"id": "hello", "kind": "email", "subject": "Hello", "body": "Hi", "next": "month"},
    {"id": "month", "kind": "wait", "duration": "30d"},
]}
ALSO = {**LISTEN, "id": "also-listen", "name": "Also listen"}
ON_SIGNUP = {**LISTEN, "id": "on-signup", "name": "On sign-up", "settings": {"entry": {"event": "form.submitted"}}}


class TemporalServer:
    """A dev server the test can kill -9 and start again on the same SQLite file."""

    def __init__(self, tmp: Path) -> None:
        self.port, self.db, self.log = free_port(), tmp / "temporal.db", tmp / "temporal-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([
                temporal_cli(), "server", "start-dev", "--db-filename", str(self.db), "--ip", "127.0.0.1",
                "--port", str(self.port), "--ui-port", str(free_port()), "--headless", "--log-level", "error",
            ], stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def temporal(tmp_path: Path) -> Iterator[TemporalServer]:
    server = TemporalServer(tmp_path)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.kill()


@pytest.fixture
def nurture_on(temporal: TemporalServer, tmp_path: Path) -> Iterator[Nurture]:
    nurture = Nurture(tmp_path / "data")
    nurture.env["NURTURE_TEMPORAL_ADDRESS"] = temporal.address
    yield nurture


def signalled_events(address: str, wid: str) -> list[str]:
    """The event ids in the run's history, as Temporal recorded its signals (and signal-with-start)."""

    async def read() -> list[str]:
        client = await Client.connect(address)
        ids = []
        async for event in client.get_workflow_handle(wid).fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                attrs = event.workflow_execution_signaled_event_attributes
                if attrs.signal_name == "event":
                    ids.append(json.loads(attrs.input.payloads[0].data)["id"])
        return ids

    try:
        return asyncio.run(read())
    except Exception:  # the run does not exist yet, or Temporal is still starting
        return []


def post_until_accepted(url: str, body: dict[str, Any]) -> httpx.Response:
    """An integrator's client: retries until the event is accepted (2xx), as the API asks."""
    for _ in range(600):
        try:
            response = httpx.post(f"{url}/api/events", json=body, timeout=10, headers=auth(url))
            if response.is_success:
                return response
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"event {body['id']} was never accepted")


def setup(url: str, leads: dict[str, list[dict[str, Any]]]) -> None:
    for model in (LISTEN, ALSO, ON_SIGNUP):
        assert httpx.post(f"{url}/api/care-models", json=model, headers=auth(url)).status_code == 201
    for lead, models in leads.items():
        assert httpx.put(f"{url}/api/leads/{lead}",
                json={"id": lead, "email": f"{lead}@example.com"}, headers=auth(url)).is_success
        for model in models:
            started = httpx.post(f"{url}/api/care-models/{model['id']}/enrolments",
                    json={"lead_id": lead}, headers=auth(url))
            assert started.json()["status"] == "started"


def test_events_accepted_while_temporal_is_down_reach_their_runs_once_it_is_back(
        nurture_on: Nurture, temporal: TemporalServer) -> None:
    proc = nurture_on.start()
    url = nurture_on.url
    try:
        setup(url, {"ada": [LISTEN, ALSO], "bob": [LISTEN]})
        temporal.kill()
        answers = collections.Counter()
        sent: dict[str, list[str]] = {"ada": [], "bob": []}
        for n in range(100):
            lead = "ada" if n % 2 else "bob"
            response = httpx.post(f"{url}/api/events", json={"id": f"click-{n}", "lead_id": lead,
                                                              "type": "email.clicked"}, timeout=30, headers=auth(url))
            answers[response.status_code] += 1
            if response.status_code == 202:
                assert response.json()["pending"], "a 202 names what is still pending"
                sent[lead].append(f"click-{n}")
        assert set(answers) <= {202, 503} and answers[202] > 0, f"never a false 200: {answers}"
        signup = httpx.post(f"{url}/api/events",
                json={"id": "signup-1", "lead_id": "cy", "type": "form.submitted"}, headers=auth(url))
        assert signup.status_code == 202
        httpx.put(f"{url}/api/leads/eve", json={"id": "eve", "email": "eve@example.com"}, headers=auth(url))
        enrolling = httpx.post(f"{url}/api/care-models/listen/enrolments", json={"lead_id": "eve"}, headers=auth(url))
        assert (enrolling.status_code, enrolling.json()["status"]) == (202, "pending")

        temporal.start()
        expected = {"nurture/listen/ada": sent["ada"], "nurture/also-listen/ada": sent["ada"],
                    "nurture/listen/bob": sent["bob"], "nurture/on-signup/cy": ["signup-1"]}

        def all_delivered() -> bool:
            return all(sorted(signalled_events(temporal.address, wid)) == sorted(ids)
                       for wid, ids in expected.items())

        wait_for(all_delivered, seconds=60)
        for wid, ids in expected.items():
            history = signalled_events(temporal.address, wid)
            assert collections.Counter(history) == collections.Counter(ids), f"{wid}: each event exactly once"
        assert httpx.get(f"{url}/healthz").status_code == 200
        for lead, model in (("cy", "on-signup"), ("eve", "listen")):
            def waits(lead: str = lead) -> list[tuple[str, str]]:
                found = httpx.get(f"{url}/api/leads/{lead}/where", headers=auth(url)).json()
                return [(w["care_model"], w["step"]) for w in found if w["step"] == "month"]
            assert wait_for(waits) == [(model, "month")], "started once Temporal was back"
    finally:
        nurture_on.stop(proc)


def test_events_retried_across_a_killed_web_process_are_delivered_exactly_once(
        nurture_on: Nurture, temporal: TemporalServer) -> None:
    proc = nurture_on.start()
    url = nurture_on.url
    setup(url, {"dee": [LISTEN]})
    posted = 0
    lock = threading.Lock()
    restarted: list[subprocess.Popen[bytes]] = []

    def kill_mid_burst_and_restart() -> None:
        while True:
            with lock:
                if posted >= 60:
                    break
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)  # mid-request, at whatever point the process is
        proc.wait()
        restarted.append(nurture_on.start())

    operator = threading.Thread(target=kill_mid_burst_and_restart)
    operator.start()
    try:
        for n in range(200):
            post_until_accepted(url, {"id": f"visit-{n}", "lead_id": "dee", "type": "page.visited"})
            with lock:
                posted += 1
        operator.join()
        ids = [f"visit-{n}" for n in range(200)]
        wait_for(lambda: sorted(signalled_events(temporal.address, "nurture/listen/dee")) == sorted(ids), 60)
        history = collections.Counter(signalled_events(temporal.address, "nurture/listen/dee"))
        assert history == collections.Counter(ids), "every event in the run's history exactly once"
    finally:
        operator.join()
        for p in restarted:
            nurture_on.stop(p)


def test_nurture_up_restarts_its_temporal_server_when_it_dies(tmp_path: Path) -> None:
    nurture = Nurture(tmp_path / "data")
    proc = nurture.start()
    try:
        [child] = wait_for(lambda: [p for p in children(proc.pid) if "temporal" in p[1]])  # type: ignore[misc]
        os.kill(child[0], signal.SIGKILL)
        wait_for(lambda: httpx.get(f"{nurture.url}/healthz").status_code == 503, 20)
        wait_for(lambda: httpx.get(f"{nurture.url}/healthz").status_code == 200, 60)
        alive = [p for p in children(proc.pid) if "temporal" in p[1]]
        assert len(alive) == 1 and alive[0][0] != child[0], "a new server took the old one's place"
        assert [p for p in children(proc.pid) if p[2] == "Z"] == [], "the dead one was reaped, not left <defunct>"
        assert "restarting it" in nurture.log.read_text()
    finally:
        nurture.stop(proc)


def test_one_process_at_a_time_holds_the_redelivery_lease(store: Store) -> None:
    deliveries = Deliveries(store)
    assert deliveries.take_lease("redelivery", "worker-a", 60)
    assert not deliveries.take_lease("redelivery", "worker-b", 60), "b waits while a's lease lives"
    assert deliveries.take_lease("redelivery", "worker-a", -1), "a renews its own lease (here: already expired)"
    assert deliveries.take_lease("redelivery", "worker-b", 60), "b takes over once a's lease has expired"
    assert not deliveries.take_lease("redelivery", "worker-a", 60)


def children(pid: int) -> list[tuple[int, str, str]]:
    """(pid, command, state) of the direct children of `pid`, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append((int(stat.parent.name), cmd, fields[0]))
    return found
