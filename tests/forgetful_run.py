"""A CareModelRun 'improved' without a patch marker, for the replay test. Kept in its own module because
the workflow sandbox re-imports the module a workflow class lives in."""

from __future__ import annotations

from temporalio import workflow

from workflows.care_model_run import CareModelRun
from workflows.messages import RunInput, RunResult


@workflow.defn(name="CareModelRun")
class ForgetfulRun(CareModelRun):
    """An interpreter 'improved' without a patch marker: it no longer records the journey."""

    @workflow.run
    async def run(self, inp: RunInput) -> RunResult:
        return await super().run(inp)

    async def _flush(self) -> None:
        self.unflushed = []
