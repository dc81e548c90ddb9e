"""Builds the worker that runs CareModelRun and its activities."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from connectors.base import Connector
from store.store import Store
from workflows.activities import Activities
from workflows.care_model_run import CareModelRun
from workflows.messages import TASK_QUEUE

# The plan interpreter's pure helpers and message types are shared with, not reloaded by, the sandbox.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("engine", "workflows.messages", "pydantic")
)


def make_worker(client: Client, store: Store, connectors: dict[str, Connector], dry_run: bool = False,
                task_queue: str = TASK_QUEUE, threads: int = 16,
                interceptors: Sequence[Interceptor] = (), public_url: str = "http://127.0.0.1:8000",
                secret: bytes = b"nurture-development-secret") -> Worker:
    activities = Activities(store, connectors, client, dry_run, task_queue, public_url, secret)
    return Worker(client, task_queue=task_queue, workflows=[CareModelRun], activities=activities.all(),
                  activity_executor=ThreadPoolExecutor(threads), workflow_runner=WORKFLOW_RUNNER,
                  interceptors=interceptors)
