"""ReleaseMaintenanceOperator: every run-owned maintenance is released, nothing else touched (I2)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import TaskDeferred

from patchflow.operators.maintenance import ReleaseMaintenanceOperator
from tests.plugins.operators.conftest import Driver, row, write_plan

CTX = {"dag": SimpleNamespace(dag_id="patch_fleet"), "run_id": "manual__t1"}


def release(plan) -> dict:
    op = ReleaseMaintenanceOperator(
        task_id="release_linux_yum", plan_path=str(plan), package_key="linux_yum", job_poll_interval=0.01
    )
    return op.execute(CTX)


def test_defaults_to_all_done():
    op = ReleaseMaintenanceOperator(task_id="r", plan_path="/x/plan.json", package_key="linux_yum")
    assert op.trigger_rule == "all_done"


def test_nothing_to_do_without_a_ledger(fake_clc, tmp_path):
    plan = write_plan(tmp_path, [row("va1demoweb01")])
    assert release(plan) == {"released": [], "already_off": [], "failed": []}
    assert not [p for m, p, _ in fake_clc.requests if m == "POST" and "Maintenance" in p]


def test_releases_after_the_rollout_died_mid_flight_and_is_idempotent(fake_clc, tmp_path):
    fake_clc.servers["va1demodb01"]["details"]["inMaintenanceMode"] = True  # before the run
    fake_clc.servers["de1demoapp01"]["details"]["inMaintenanceMode"] = True  # not in this package
    plan = write_plan(
        tmp_path, [row("va1demoweb01"), row("va1demoweb02"), row("va1demodb01", in_maintenance=True)]
    )
    with pytest.raises(TaskDeferred):
        Driver(plan_path=str(plan), max_concurrency=3).turn()  # then the task is killed
    assert fake_clc.in_maintenance("va1demoweb01") and fake_clc.in_maintenance("va1demoweb02")
    out = release(plan)
    assert sorted(out["released"]) == ["va1demoweb01", "va1demoweb02"] and out["failed"] == []
    assert not fake_clc.in_maintenance("va1demoweb01") and not fake_clc.in_maintenance("va1demoweb02")
    assert fake_clc.in_maintenance("va1demodb01")  # preexisting: left alone
    assert fake_clc.in_maintenance("de1demoapp01")  # not in the ledger: never touched
    ledger = json.loads((tmp_path / "rollout_linux_yum.ledger.json").read_text())
    assert ledger["servers"]["va1demoweb01"]["maintenance_released"] is True
    again = release(plan)
    assert again["released"] == [] and sorted(again["already_off"]) == ["va1demoweb01", "va1demoweb02"]
    stops = [p for m, p, _ in fake_clc.requests if "stopMaintenance" in p]
    assert len(stops) == 1


def test_releases_what_the_rollout_could_not_switch_off(fake_clc, tmp_path):
    plan = write_plan(tmp_path, [row("va1demoweb01")])
    fake_clc.fail_next("POST", r"stopMaintenance", 400, body={"message": "busy"}, times=1)
    out = Driver(plan_path=str(plan), max_concurrency=1).run()
    assert out["counts"]["patched"] == 1
    assert fake_clc.in_maintenance("va1demoweb01")  # the in-rollout release failed
    assert release(plan)["released"] == ["va1demoweb01"]
    assert not fake_clc.in_maintenance("va1demoweb01")


def test_a_failed_release_fails_the_task_naming_the_servers(fake_clc, tmp_path):
    plan = write_plan(tmp_path, [row("va1demoweb01")])
    with pytest.raises(TaskDeferred):
        Driver(plan_path=str(plan), max_concurrency=1).turn()
    fake_clc.jobs.clear()
    fake_clc.job_script = ["failed"]
    orig = fake_clc._new_job
    fake_clc._new_job = lambda script: orig(["failed"])
    with pytest.raises(Exception, match="could not be released for: va1demoweb01"):
        release(plan)
