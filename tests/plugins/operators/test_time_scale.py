"""``[patchflow] time_scale`` reaches every component that waits, and nothing keeps a production value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import TaskDeferred

from include.patching.tuning import PRODUCTION, Tuning
from patchflow.hooks.clc import ClcHook
from patchflow.operators.maintenance import ReleaseMaintenanceOperator
from patchflow.operators.rollout import PatchRolloutOperator
from patchflow.triggers.patching import PatchCompletionTrigger
from patchflow.tuning import current
from tests.plugins.operators.conftest import Driver

SCALE = 0.01


@pytest.fixture
def scaled(monkeypatch):
    monkeypatch.setenv("AIRFLOW__PATCHFLOW__TIME_SCALE", str(SCALE))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLC_DEFAULT",
        json.dumps(
            {"conn_type": "http", "host": "http://127.0.0.1:9/v2", "login": "u", "password": "pw-12345"}
        ),
    )


def expected(name: str) -> float:
    return getattr(PRODUCTION, name) * SCALE


def patch_fleet_task_retry_delay() -> float:
    """The retry delay of patch_fleet's tasks, parsed from the DAG file under the current config."""
    from airflow.dag_processing.dagbag import DagBag

    dags = Path(__file__).resolve().parents[3] / "dags"
    dag = DagBag(dag_folder=str(dags / "patch_fleet.py")).dags["patch_fleet"]
    delays = {task.retry_delay.total_seconds() for task in dag.tasks}
    assert len(delays) == 1, delays
    return delays.pop()


def consumers() -> dict[str, float]:
    """Every timing setting as the component that uses it sees it."""
    rollout = PatchRolloutOperator(task_id="r", plan_path="p", package_key="linux_yum")
    release = ReleaseMaintenanceOperator(task_id="m", plan_path="p", package_key="linux_yum")
    now = datetime.now(UTC)
    item = {"server_id": "s", "job_id": None, "requested_at": now.isoformat(), "deadline": now.isoformat()}
    trigger = PatchCompletionTrigger(servers=[item], alias="DEMO")
    hook = ClcHook()
    return {
        "task_retry_delay": patch_fleet_task_retry_delay(),
        "poll_interval": trigger.poll_interval,
        "max_poll_interval": trigger.max_poll_interval,
        "batch_window": trigger.batch_window,
        "maintenance_timeout": rollout.maintenance_timeout,
        "release_delay": rollout.release_delay,
        "api_clock_age": rollout.api_clock_age,
        "note_interval": rollout.note_interval,
        "job_poll_interval": release.job_poll_interval,
        "job_poll_cap": hook.timing.job_poll_cap,
        "release_job_timeout": release.job_timeout,
        "deferral_margin": rollout.deferral_margin,
        "retry_base": hook.retry.base,
        "retry_cap": hook.retry.cap,
        "token_refresh_margin": hook._token_timer.margin,
        "health_probe_timeout": rollout.health_probe_timeout,
        "health_retry_interval": rollout.health_retry_interval,
        "snapshot_timeout": rollout.snapshot_timeout,
        "revert_timeout": rollout.revert_timeout,
        "snapshot_cleanup_grace": current().snapshot_cleanup_grace,  # read by the snapshot_cleanup task
        "window_cutoff": rollout.rollout_window().cutoff_seconds,
    }


def test_every_timing_setting_is_scaled_where_it_is_used(scaled):
    seen = consumers()
    assert set(seen) == set(Tuning.names()), "a timing setting nobody uses, or one missing here"
    for name, value in seen.items():
        assert value == pytest.approx(expected(name)), name
    operator = PatchRolloutOperator(task_id="r", plan_path="p", package_key="linux_yum")
    assert (operator.poll_interval, operator.max_poll_interval, operator.batch_window) == pytest.approx(
        (seen["poll_interval"], seen["max_poll_interval"], seen["batch_window"])
    )
    assert ClcHook()._token_timer.time_scale == SCALE  # the token's declared lifetime is in API time


def test_explicit_settings_win(scaled, monkeypatch):
    monkeypatch.setenv("AIRFLOW__PATCHFLOW__BATCH_WINDOW", "3")
    operator = PatchRolloutOperator(task_id="r", plan_path="p", package_key="linux_yum", poll_interval=7)
    assert operator.poll_interval == 7 and operator.batch_window == 3
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLC_DEFAULT",
        json.dumps({"conn_type": "http", "host": "http://x/v2", "login": "u", "password": "pw-12345",
                    "extra": {"retry_base": 2, "retry_cap": 9}}),
    )  # fmt: skip
    assert (ClcHook().retry.base, ClcHook().retry.cap) == (2.0, 9.0)


def test_the_per_server_timeout_and_the_deferral_are_scaled(cloud, plan4, monkeypatch):
    """The form's minutes are real minutes: 1000 s become 10 s at 0.01, the margin 9 s."""
    monkeypatch.setenv("AIRFLOW__PATCHFLOW__TIME_SCALE", str(SCALE))
    with pytest.raises(TaskDeferred) as deferred:
        Driver(fast=False, plan_path=str(plan4), max_concurrency=1, server_timeout=1000).turn()
    (item,) = deferred.value.trigger.servers
    window = datetime.fromisoformat(item["deadline"]) - datetime.fromisoformat(
        item["requested_at"].replace("Z", "+00:00")
    )
    assert window == timedelta(seconds=10)
    assert 10 < deferred.value.timeout.total_seconds() <= 10 + expected("deferral_margin")
    assert deferred.value.trigger.poll_interval == pytest.approx(expected("poll_interval"))


def test_the_window_cutoff_is_in_real_minutes_scaled_and_a_bad_window_end_fails_the_task(scaled):
    from airflow.sdk.exceptions import AirflowFailException

    window = PatchRolloutOperator(
        task_id="r", plan_path="p", package_key="linux_yum", window_end="2026-12-16T02:00:00+01:00",
        window_cutoff_minutes=10,
    ).rollout_window()  # fmt: skip
    assert window.cutoff_seconds == pytest.approx(600 * SCALE)
    assert window.end == datetime(2026, 12, 16, 1, 0, tzinfo=UTC)
    assert (
        PatchRolloutOperator(task_id="r", plan_path="p", package_key="linux_yum").rollout_window().end is None
    )
    bad = PatchRolloutOperator(task_id="r", plan_path="p", package_key="linux_yum", window_end="16 Dec 02:00")
    with pytest.raises(AirflowFailException, match="window_end: '16 Dec 02:00' is not an ISO 8601 moment"):
        bad.rollout_window()
