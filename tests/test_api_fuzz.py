"""The JSON API under generated requests, signed in with a token holding every scope: no server error, and every
response matches the schema the API declares (schemathesis, against the real Temporal test server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from temporalio.testing import WorkflowEnvironment

from designer.app import create_app
from engine.access import SCOPES
from nurture.settings import Settings
from store.store import Store
from tests.accounts import token_headers


def test_the_api_answers_every_generated_request_within_its_schema(env: WorkflowEnvironment, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'nurture.db'}")
    # The app connects to the test server itself, on the loop its requests run on.
    target = env.client.service_client.config.target_host
    app = create_app(Settings(data_dir=tmp_path, temporal_address=target, task_queue="fuzz"), store=store)
    auth = token_headers(store, *SCOPES)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=auth)
    failures: dict[str, str] = {}
    tried = 0
    for found in schema.get_all_operations():
        operation = found.ok()
        tried += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def attempt(case: Any) -> None:
            case.call_and_validate(headers=auth, checks=[not_a_server_error, response_schema_conformance])

        try:
            attempt()
        except BaseException as exc:  # schemathesis raises a group: collect each operation's, report them together
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures[operation.label] = str(exc)[:1500]
    assert tried >= 20, "every API operation is in the schema"
    assert not failures, "\n\n".join(f"{label}:\n{why}" for label, why in failures.items())
