"""Fixtures: the real Temporal time-skipping test server, a real SQLite store and a worker per test."""

from __future__ import annotations

import contextlib
import textwrap
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Interceptor

from connectors.base import Message, Receipt
from connectors.registry import CHANNELS
from designer.app import create_app
from engine.lead import LeadEvent, LeadState
from engine.validator import load_or_raise
from nurture.settings import Settings
from store.store import Store
from store.tables import CareModelVersion
from tests.accounts import sign_in
from tests.postgres import PostgresServer
from workflows.care_model_run import CareModelRun
from workflows.enrolment import Enrolled, enrol
from workflows.ingest import Ingested, ingest
from workflows.messages import DATA_CONVERTER
from workflows.simulate import _quiet_runtime, test_server_path
from workflows.worker import make_worker

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RecordingConnector:
    """A channel that keeps what it was asked to send, so tests can count real deliveries."""

    name: str = "recording"
    sent: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: Message) -> Receipt:
        with self.lock:
            self.sent.append(message)
        return Receipt("sent", external_id=f"msg-{len(self.sent)}")

    def to(self, lead_id: str, channel: str = "email") -> list[Message]:
        return [m for m in self.sent if m.lead_id == lead_id and m.channel == channel]


@dataclass
class Harness:
    env: WorkflowEnvironment
    store: Store
    queue: str
    channel: RecordingConnector

    def publish(self, yaml_text: str) -> CareModelVersion:
        return self.store.publish(load_or_raise(textwrap.dedent(yaml_text)))

    def lead(self, lead_id: str | None = None, unsubscribed: bool = False, **fields: Any) -> LeadState:
        lead = LeadState(id=lead_id or f"lead-{uuid.uuid4().hex[:8]}", email=fields.pop("email", "x@example.com"),
                         **fields)
        self.store.upsert_lead(lead, unsubscribed=unsubscribed)
        return lead

    async def enrol(self, version: CareModelVersion, lead: LeadState) -> tuple[Enrolled, WorkflowHandle]:
        result = await enrol(self.env.client, self.store, version, self.store.snapshot(lead.id),
                             task_queue=self.queue)
        return result, self.env.client.get_workflow_handle_for(CareModelRun.run, result.workflow_id)

    async def event(self, lead: LeadState, type_: str, data: dict[str, Any] | None = None,
                    event_id: str | None = None) -> Ingested:
        now = (await self.env.get_current_time()).timestamp()
        event = LeadEvent(event_id or uuid.uuid4().hex, type_, now, data or {})
        return await ingest(self.env.client, self.store, lead.id, event, task_queue=self.queue)

    async def finish(self, handle: WorkflowHandle, days: int = 400) -> Any:
        """The run's result, skipping the test server's clock ahead a day at a time until the run ends.

        (Awaiting the result with time skipping unlocked makes the test server leap to its ten-year run
        timeout as soon as a continued-as-new run is waiting, so the clock is moved explicitly.)"""
        latest = self.env.client.get_workflow_handle(handle.id)
        for _ in range(days):
            if (await latest.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await self.env.sleep(86400)
        return await handle.result()

    async def days(self, n: float) -> None:
        await self.env.sleep(n * 86400)

    def steps(self, lead: LeadState) -> list[tuple[str, str]]:
        return [(j.step, j.outcome) for j in self.store.journey(lead_id=lead.id)]


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), runtime=_quiet_runtime(), data_converter=DATA_CONVERTER
    ) as environment:
        yield environment


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Every run and API test runs on both databases Nurture supports."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nurture.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    store = Store.open(url)
    yield store
    store.engine.dispose()


PUBLIC_URL, SECRET = "http://nurture.test", b"test-secret"


async def _harness(env: WorkflowEnvironment, store: Store, interceptors: list[Interceptor],
                   connectors: dict[str, Any] | None = None) -> AsyncIterator[Harness]:
    channel = RecordingConnector()
    queue = f"test-{uuid.uuid4()}"
    worker = make_worker(env.client, store, {c: channel for c in CHANNELS} | (connectors or {}), task_queue=queue,
                         interceptors=interceptors, public_url=PUBLIC_URL, secret=SECRET)
    async with worker:
        yield Harness(env, store, queue, channel)
        for enrolment in store.enrolments(running=True):  # leave no timers behind for later tests' clocks
            with contextlib.suppress(RPCError):
                await env.client.get_workflow_handle(enrolment.workflow_id).terminate("test finished")


@pytest.fixture
async def nurture(env: WorkflowEnvironment, store: Store) -> AsyncIterator[Harness]:
    async for harness in _harness(env, store, []):
        yield harness


@pytest.fixture
async def designer(nurture: Harness, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The web app on the harness's store and Temporal, signed in as an admin."""
    app = create_app(Settings(data_dir=tmp_path, task_queue=nurture.queue), store=nurture.store,
                     client=nurture.env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nurture") as client:
        await sign_in(client, nurture.store)
        yield client


def harness_with(env: WorkflowEnvironment, store: Store, interceptors: list[Interceptor] = (),  # type: ignore[assignment]
                 connectors: dict[str, Any] | None = None) -> Any:
    return _harness(env, store, list(interceptors), connectors)
