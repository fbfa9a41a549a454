"""Helpers to drive PatchRolloutOperator like the task runner does: execute → trigger → resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from patchflow.operators.rollout import PatchRolloutOperator

FAST = {
    "poll_interval": 0.01,
    "max_poll_interval": 0.03,
    "batch_window": 0.0,
    "job_poll_interval": 0.01,
    "server_timeout": 20,
}


def write_plan(folder: Path, rows: list[dict]) -> Path:
    path = folder / "plan.json"
    path.write_text(json.dumps({"account_alias": "DEMO", "servers": rows}))
    return path


def row(sid: str, package: str | None = "linux_yum", state: str | None = None, in_maintenance: bool = False):
    return {"id": sid, "package_key": package, "state": state, "in_maintenance": in_maintenance}


async def first_event(trigger: Any, limit: float = 20.0) -> Any:
    """What the triggerer does: take the first event, then close the generator."""
    run = trigger.run()
    try:
        return await asyncio.wait_for(run.__anext__(), limit)
    finally:
        await run.aclose()


class Driver:
    """Rebuilds the operator for every turn (nothing on ``self`` survives a deferral)."""

    def __init__(self, *, fast: bool = True, event_limit: float = 20.0, **kwargs: Any) -> None:
        """``fast=False``: no explicit timings, the deployment's (``[patchflow] time_scale``) apply."""
        # One package's mechanics: the plans here list servers of packages no test rolls out, which
        # under the fleet-wide limits would hold their share (tests/patching/test_fleet_budget.py).
        # These tests follow the deferrals; the worker's own loop is test_rollout_in_worker.py's.
        base = {
            "task_id": "rollout_linux_yum",
            "package_key": "linux_yum",
            "fleet_wide": False,
            "deferrable": True,
        }
        self.kwargs = {**base, **(FAST if fast else {}), **kwargs}
        self.event_limit = event_limit
        self.context = {
            "dag": SimpleNamespace(dag_id="patch_fleet"),
            "run_id": "manual__t1",
            "dag_run": SimpleNamespace(dag_id="patch_fleet", run_id="manual__t1"),
        }
        self.deferrals: list[TaskDeferred] = []

    def operator(self) -> PatchRolloutOperator:
        return PatchRolloutOperator(**self.kwargs)

    def turn(self, method: str | None = None, next_kwargs: dict | None = None) -> Any:
        op = self.operator()
        if method is None:
            return op.execute(self.context)
        return op.resume_execution(method, next_kwargs, self.context)

    def run(self, max_turns: int = 60) -> dict:
        try:
            return self.turn()
        except TaskDeferred as deferred:
            return self.follow(deferred, max_turns)

    def follow(self, deferred: TaskDeferred, max_turns: int = 60) -> dict:
        for _ in range(max_turns):
            self.deferrals.append(deferred)
            event = asyncio.run(first_event(deferred.trigger, self.event_limit))
            try:
                return self.turn(deferred.method_name, {"event": event.payload})
            except TaskDeferred as again:
                deferred = again
        raise AssertionError("rollout did not finish")


@pytest.fixture
def plan4(tmp_path: Path) -> Path:
    return write_plan(
        tmp_path,
        [
            row("va1demoweb01"),
            row("va1demoweb02"),
            row("va1demodb01"),
            row("de1demoapp01"),
            row("va1skipped01", state="skipped_unsupported_os"),
            row("va1win01", package="windows_2012"),
        ],
    )
