"""Drive ExecutePackageOperator and PatchExecutionSensor like the task runner does, against the
in-process simulator: execute → (defer → trigger event → resume)* → result."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from airflow.sdk.exceptions import TaskDeferred

from patchflow.operators.execute_package import ExecutePackageOperator
from patchflow.sensors.patch_execution import PatchExecutionSensor
from tests.plugins.operators.conftest import first_event

WAIT_FAST = {"poll_interval": 0.01, "max_poll_interval": 0.03, "batch_window": 0.0}


def context(dag_id: str = "my_dag", run_id: str = "manual__t1") -> dict[str, Any]:
    return {
        "dag": SimpleNamespace(dag_id=dag_id),
        "run_id": run_id,
        "ti": SimpleNamespace(map_index=-1),
        "dag_run": SimpleNamespace(dag_id=dag_id, run_id=run_id),
    }


def execute(tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    """One ExecutePackageOperator attempt (call again for a retry: same run, same folder)."""
    args = {
        "task_id": "execute",
        "package": "linux_yum",
        "artifacts_base": str(tmp_path),
        "job_poll_interval": 0.01,
    }
    return ExecutePackageOperator(**(args | kwargs)).execute(context())


def sensor(executions: dict[str, Any], **kwargs: Any) -> PatchExecutionSensor:
    return PatchExecutionSensor(task_id="wait", executions=executions, **(WAIT_FAST | kwargs))


def wait(executions: dict[str, Any], *, max_turns: int = 60, **kwargs: Any) -> tuple[Any, list[TaskDeferred]]:
    """Run the sensor to its end; a new instance per turn (nothing on ``self`` survives a deferral).
    Returns its result and the deferrals it made."""
    deferrals: list[TaskDeferred] = []
    try:
        return sensor(executions, **kwargs).execute(context()), deferrals
    except TaskDeferred as deferred:
        current = deferred
    for _ in range(max_turns):
        deferrals.append(current)
        event = asyncio.run(first_event(current.trigger))
        try:
            resumed = sensor(executions, **kwargs).resume_execution(
                current.method_name, {"event": event.payload}, context()
            )
            return resumed, deferrals
        except TaskDeferred as again:
            current = again
    raise AssertionError("the sensor did not finish")
