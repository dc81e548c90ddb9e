"""Runs already in flight must replay on new code: saved histories are replayed by the current interpreter.

When the interpreter changes on purpose, guard the change with workflow.patched() and add a new history
(`nurture simulate ... --history tests/histories/NAME.json`); never re-record an old one to make it pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tests.forgetful_run import ForgetfulRun
from workflows.care_model_run import CareModelRun
from workflows.messages import DATA_CONVERTER
from workflows.worker import WORKFLOW_RUNNER

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))


def history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays_on_the_current_interpreter(path: Path) -> None:
    replayer = Replayer(workflows=[CareModelRun], workflow_runner=WORKFLOW_RUNNER, data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(history(path))


async def test_an_unguarded_interpreter_change_is_caught() -> None:
    assert len(HISTORIES) >= 3
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[ForgetfulRun], workflow_runner=WORKFLOW_RUNNER,
                          data_converter=DATA_CONVERTER).replay_workflow(
            history(HISTORIES[0]))
