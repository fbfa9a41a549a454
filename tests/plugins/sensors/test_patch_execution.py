"""PatchExecutionSensor against the real simulator in-process: deferred and polling, outcomes, faults."""

from __future__ import annotations

import importlib

import pytest
from airflow.sdk.bases.operator import TriggerFailureReason
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred

from patchflow.triggers.patching import PatchCompletionTrigger
from tests.plugins.blocks import context, execute, sensor, wait
from tests.plugins.cloud import fleet_with

WEB = {"va1demoweb01", "va1demoweb02"}
FAILING = [{"package": "bash-4.1.2-33.el6_7.1.x86_64", "duration": 2, "failure": "fail"}]
FAIL_ONCE = [{"package": "bash-4.1.2-33.el6_7.1.x86_64", "duration": 2, "failure": "fail_once"}]
THREE_REBOOTS = [
    {"package": f"pkg{cycle}-1.0-1.el6.x86_64", "duration": 2, "reboot": True, "cycle": cycle}
    for cycle in (1, 2, 3)
]


def states(result: dict) -> dict[str, str]:
    return {sid: s["state"] for sid, s in result["servers"].items()}


def test_it_defers_to_the_completion_trigger_which_round_trips_through_serialization(cloud, tmp_path):
    out = execute(tmp_path, group="Web")
    with pytest.raises(TaskDeferred) as deferred:
        sensor(out).execute(context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, PatchCompletionTrigger)
    path, kwargs = trigger.serialize()
    module, name = path.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)
    assert {s["server_id"]: s["job_id"] for s in kwargs["servers"]} == {
        e["server_id"]: e["job_id"] for e in out["executions"]
    }
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None  # bounded by the per-server deadlines (I7)


def test_patched_servers_end_with_their_outcome_and_out_of_maintenance(cloud, tmp_path):
    result, deferrals = wait(execute(tmp_path, group="Web"))
    assert deferrals and states(result) == dict.fromkeys(WEB, "patched")
    assert all(s["execution_id"] and s["patches_installed"] == 1 for s in result["servers"].values())
    assert result["counts"] == {"patched": 2, "total": 2}
    cloud.settle()
    assert not any(cloud.in_maintenance(s) for s in WEB)  # switched off as each ended (I2)


def test_each_patch_is_judged_by_its_last_attempt_and_reboot_cycles_are_followed(start_cloud, tmp_path):
    start_cloud(fleet_with(va1demoweb01={"patches": FAIL_ONCE}, va1demoweb02={"patches": THREE_REBOOTS}))
    result, _ = wait(execute(tmp_path, group="Web"))
    assert states(result) == dict.fromkeys(WEB, "patched")
    assert result["servers"]["va1demoweb02"]["attempts"] == 4  # three reboot cycles + the final scan
    assert result["servers"]["va1demoweb02"]["patches_installed"] == 3


def test_a_failed_server_fails_the_sensor_naming_it(start_cloud, tmp_path):
    start_cloud(fleet_with(va1demoweb02={"patches": FAILING}))
    with pytest.raises(AirflowFailException, match=r"1 of 2 server\(s\) not patched: va1demoweb02: failed"):
        wait(execute(tmp_path, group="Web"))


def test_soft_fail_skips_instead_and_the_results_are_written_either_way(start_cloud, tmp_path):
    start_cloud(fleet_with(va1demoweb02={"patches": FAILING}))
    out = execute(tmp_path, group="Web")
    with pytest.raises(AirflowSkipException):
        wait(out, soft_fail=True)
    results = (tmp_path / "my_dag" / "manual__t1" / "execute" / "results_linux_yum.json").read_text()
    assert '"failed"' in results and '"patched"' in results


def test_without_deferral_it_polls_in_the_worker_to_the_same_outcome(start_cloud, tmp_path):
    cloud = start_cloud(fleet_with(va1demoweb02={"patches": FAILING}))
    out = execute(tmp_path, group="Web")
    polling = sensor(out, deferrable=False, poke_interval=0.01, max_wait=0.05)
    with pytest.raises(AirflowFailException, match="va1demoweb02: failed"):
        polling.execute(context())  # a TaskDeferred here would fail the test
    cloud.settle()
    assert not any(cloud.in_maintenance(s) for s in WEB)


def test_without_deferral_patched_servers_are_returned(cloud, tmp_path):
    out = execute(tmp_path, group="Web")
    result = sensor(out, deferrable=False, poke_interval=0.01, max_wait=0.05).execute(context())
    assert states(result) == dict.fromkeys(WEB, "patched")


def test_a_server_past_its_deadline_times_out(cloud, tmp_path):
    cloud.fault(kind="stuck_execution", server="va1demoweb02")
    result_or_error = pytest.raises(AirflowFailException, match="va1demoweb02: timed_out")
    with result_or_error:
        wait(execute(tmp_path, group="Web", server_timeout=0.5))
    cloud.settle()
    assert cloud.executions_started("va1demoweb01") == 1


def test_a_deferral_timeout_ends_servers_in_flight_timed_out_and_soft_fail_applies(cloud, tmp_path):
    out = execute(tmp_path, group="Web")
    with pytest.raises(TaskDeferred):
        sensor(out).execute(context())
    with pytest.raises(AirflowSkipException):
        sensor(out, soft_fail=True).resume_execution(
            "__fail__", {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context()
        )
    results = (tmp_path / "my_dag" / "manual__t1" / "execute" / "results_linux_yum.json").read_text()
    assert results.count('"timed_out"') >= 2
    cloud.settle()
    assert not any(cloud.in_maintenance(s) for s in WEB)  # released at the backstop too


def test_a_retried_sensor_continues_without_sending_anything(cloud, tmp_path):
    out = execute(tmp_path, group="Web")
    with pytest.raises(TaskDeferred):
        sensor(out).execute(context())  # the first attempt deferred, then its worker was lost
    result, _ = wait(out)  # the retry starts from execute() again
    assert states(result) == dict.fromkeys(WEB, "patched")
    assert len(cloud.sent(method="POST", containing="executePackage")) == 1
