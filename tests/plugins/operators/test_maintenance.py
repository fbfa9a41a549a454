"""ReleaseMaintenanceOperator: every run-owned maintenance is released, nothing else touched (I2)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import TaskDeferred

from include.clc.errors import ClcError
from include.patching.audit_rows import MaintenanceResult, build_rows, maintenance_columns
from include.patching.rollout_state import LedgerEntry
from patchflow.operators.maintenance import ReleaseMaintenanceOperator
from tests.patching.memory_api import MemoryApi, make_rollout
from tests.patching.test_rollout_maintenance import on_disk
from tests.plugins.cloud import START_MAINTENANCE, STOP_MAINTENANCE, fleet_with
from tests.plugins.operators.conftest import Driver, row, write_plan

CTX = {"dag": SimpleNamespace(dag_id="patch_fleet"), "run_id": "manual__t1"}


def ledger_of(folder) -> dict:
    return on_disk(folder)


def release(plan) -> dict:
    op = ReleaseMaintenanceOperator(
        task_id="release_linux_yum", plan_path=str(plan), package_key="linux_yum", job_poll_interval=0.01
    )
    return op.execute(CTX)


def test_defaults_to_all_done():
    op = ReleaseMaintenanceOperator(task_id="r", plan_path="/x/plan.json", package_key="linux_yum")
    assert op.trigger_rule == "all_done"


def test_nothing_to_do_without_a_ledger(cloud, tmp_path):
    plan = write_plan(tmp_path, [row("va1demoweb01")])
    assert release(plan) == {"released": [], "already_off": [], "failed": []}
    assert not cloud.sent(method="POST", containing="Maintenance")


def test_releases_after_the_rollout_died_mid_flight_and_is_idempotent(start_cloud, tmp_path):
    cloud = start_cloud(
        fleet_with(
            va1demodb01={"maintenance": True},  # before the run
            de1demoapp01={"maintenance": True},  # not in this package
        )
    )
    plan = write_plan(
        tmp_path, [row("va1demoweb01"), row("va1demoweb02"), row("va1demodb01", in_maintenance=True)]
    )
    with pytest.raises(TaskDeferred):
        Driver(plan_path=str(plan), max_concurrency=3).turn()  # then the task is killed
    assert cloud.in_maintenance("va1demoweb01") and cloud.in_maintenance("va1demoweb02")
    out = release(plan)
    assert sorted(out["released"]) == ["va1demoweb01", "va1demoweb02"] and out["failed"] == []
    assert not cloud.in_maintenance("va1demoweb01") and not cloud.in_maintenance("va1demoweb02")
    assert cloud.in_maintenance("va1demodb01")  # preexisting: left alone
    assert cloud.in_maintenance("de1demoapp01")  # not in the ledger: never touched
    ledger = json.loads((tmp_path / "rollout_linux_yum.ledger.json").read_text())
    assert ledger["servers"]["va1demoweb01"]["maintenance_released"] is True
    again = release(plan)
    assert again["released"] == [] and sorted(again["already_off"]) == ["va1demoweb01", "va1demoweb02"]
    assert len(cloud.sent(containing="stopMaintenance")) == 1


def test_releases_what_the_rollout_could_not_switch_off(cloud, tmp_path):
    plan = write_plan(tmp_path, [row("va1demoweb01")])
    # every attempt of the rollout's stopMaintenance (the connection allows 5; the rollout asks
    # once when the server finishes and once more for what is left when it ends) is answered 500
    cloud.fault(kind="error", route=STOP_MAINTENANCE, status=500, count=10)
    out = Driver(plan_path=str(plan), max_concurrency=1).run()
    assert out["counts"]["patched"] == 1
    cloud.settle()
    assert cloud.in_maintenance("va1demoweb01")  # the in-rollout release failed
    assert release(plan)["released"] == ["va1demoweb01"]
    assert not cloud.in_maintenance("va1demoweb01")
    assert cloud.sim.counters["requests"][STOP_MAINTENANCE] == {"500": 10, "200": 1}


def test_a_failed_release_fails_the_task_naming_the_servers(cloud, tmp_path):
    plan = write_plan(tmp_path, [row("va1demoweb01")])
    with pytest.raises(TaskDeferred):
        Driver(plan_path=str(plan), max_concurrency=1).turn()
    cloud.fault(kind="error", route=STOP_MAINTENANCE, status=500)  # every stopMaintenance fails
    with pytest.raises(Exception, match="could not be released for: va1demoweb01"):
        release(plan)
    assert cloud.in_maintenance("va1demoweb01")


# --- issue 8: the release waits for slow jobs, records every outcome first, needs no plan -------


def release_with(api: MemoryApi, plan, **kwargs) -> dict:
    """Run the release task with the in-memory fake as its CLC client."""
    op = ReleaseMaintenanceOperator(
        task_id="release_linux_yum", plan_path=str(plan), package_key="linux_yum", **kwargs
    )
    op._hook = lambda: api  # type: ignore[method-assign]
    return op.execute(CTX)


def slow_rollout(tmp_path, slow_waits: int) -> MemoryApi:
    """A rollout whose maintenance-on job outlived maintenance_timeout (issue 8, item 2)."""
    api = MemoryApi({"va1demoweb01": False, "va1demoweb02": False}, slow_waits=slow_waits)
    make_rollout(tmp_path, api).fill()
    assert api.executed == [] and not api.in_maintenance("va1demoweb01")  # the job has not landed
    return api


def test_release_waits_for_a_slow_maintenance_job_before_deciding(tmp_path):
    api = slow_rollout(tmp_path, slow_waits=1)  # lands during the release task's wait
    out = release_with(api, tmp_path / "plan.json", job_poll_interval=0.01)
    api.land_all()  # time passes: nothing may switch maintenance on afterwards
    assert not api.in_maintenance("va1demoweb01") and not api.in_maintenance("va1demoweb02")
    assert sorted(out["released"]) == ["va1demoweb01", "va1demoweb02"] and out["failed"] == []
    entry = ledger_of(tmp_path)["va1demoweb01"]
    assert entry["maintenance_job_status"] == "succeeded" and entry["maintenance_release"] == "released"


def test_a_job_still_running_at_the_release_timeout_is_reported_not_taken_as_off(tmp_path):
    api = slow_rollout(tmp_path, slow_waits=5)
    (job_id,) = api.jobs
    with pytest.raises(
        ClcError, match=rf"could not be released for: va1demoweb01: maintenance-on job {job_id}"
    ):
        release_with(api, tmp_path / "plan.json", job_timeout=0.1, job_poll_interval=0.01)
    entry = ledger_of(tmp_path)["va1demoweb01"]
    assert entry["maintenance_release"] == "unconfirmed" and entry["maintenance_released"] is False
    assert f"job {job_id} still executing" in entry["maintenance_note"]
    assert maintenance_columns(LedgerEntry.from_json(entry))["maintenance"] == MaintenanceResult.LEFT_ON


def test_a_refused_release_is_in_the_ledger_before_the_task_fails(tmp_path):
    api = MemoryApi(
        {"va1demoweb01": False, "va1demodb01": True}, refuse_stop={"va1demoweb01": "server is rebooting"}
    )
    make_rollout(tmp_path, api, preexisting=("va1demodb01",)).fill()  # never finishes: task killed
    with pytest.raises(ClcError, match="could not be released for: va1demoweb01: stopMaintenance refused"):
        release_with(api, tmp_path / "plan.json", job_poll_interval=0.01)
    entries = ledger_of(tmp_path)
    assert entries["va1demoweb01"]["maintenance_release"] == "refused"
    assert entries["va1demoweb01"]["maintenance_note"] == "stopMaintenance refused: server is rebooting"
    assert entries["va1demodb01"]["maintenance_release"] == "kept_preexisting"
    # the audit (trigger rule all_done) reads it from the ledger
    plan = {
        "account_alias": "DEMO",
        "servers": [
            {"id": "va1demoweb01", "package_key": "linux_yum", "state": None},
            {"id": "va1demodb01", "package_key": "linux_yum", "state": None},
        ],
    }
    rows = {r["server_id"]: r for r in build_rows(plan, {}, {"linux_yum": {"servers": entries}})}
    assert rows["va1demoweb01"]["maintenance"] == "left_on"
    assert rows["va1demoweb01"]["maintenance_note"] == "stopMaintenance refused: server is rebooting"
    assert rows["va1demodb01"]["maintenance"] == "kept_preexisting"


@pytest.mark.parametrize("plan_path", [None, "None", ""], ids=["none", "none_rendered", "empty"])
def test_no_plan_ends_cleanly(plan_path, capsys):
    """An upstream failed before classify: the plan path renders to None (was: TypeError, 3 tries)."""
    op = ReleaseMaintenanceOperator(task_id="r", plan_path=plan_path, package_key="linux_yum")
    op._hook = lambda: pytest.fail("no plan: nothing to ask the API")  # type: ignore[method-assign]
    assert op.execute(CTX) == {"released": [], "already_off": [], "failed": []}
    logged = capsys.readouterr()
    assert "no plan: this run put no server into maintenance" in logged.out + logged.err


def test_lost_start_maintenance_answer_retried_by_the_hook_is_released(cloud, tmp_path):
    """Issue 8, item 1, through the real hook: the first request is carried out but answered 500;
    the hook retries it, and the server is the run's to release."""
    plan = write_plan(tmp_path, [row("va1demoweb01")])
    cloud.fault(kind="garbage", route=START_MAINTENANCE, status=500, body="html", processed=True, count=1)
    out = Driver(plan_path=str(plan), max_concurrency=1).run()
    assert out["counts"]["patched"] == 1
    assert len(cloud.sent(containing="startMaintenance")) == 2  # processed, answer lost, retried
    assert (
        json.loads((tmp_path / "rollout_linux_yum.ledger.json").read_text())["servers"]["va1demoweb01"][
            "maintenance"
        ]
        == "ours"
    )
    cloud.settle()
    assert not cloud.in_maintenance("va1demoweb01")
    assert release(plan)["already_off"] == ["va1demoweb01"]
    assert not cloud.in_maintenance("va1demoweb01")


def test_a_refused_login_fails_the_release_without_retries(cloud, monkeypatch, tmp_path):
    """The release logs in once; a refused login is not retried by Airflow (AirflowFailException)."""
    from airflow.sdk.exceptions import AirflowFailException

    from tests.plugins.cloud import PASSWORD
    from tests.plugins.operators.conftest import row, write_plan

    plan = write_plan(tmp_path, [row("va1demoweb01")])
    (tmp_path / "rollout_linux_yum.ledger.json").write_text(
        json.dumps(
            {
                "version": 1, "package_key": "linux_yum", "package_id": "x", "alias": "DEMO",
                "order": ["va1demoweb01"],
                "servers": {"va1demoweb01": {**LedgerEntry.new().to_json(), "maintenance": "ours"}},
            }
        )
    )  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", cloud.conn_json().replace(PASSWORD, "wrong-password-3"))
    op = ReleaseMaintenanceOperator(task_id="release", plan_path=str(plan), package_key="linux_yum")
    with pytest.raises(AirflowFailException, match="refused the login"):
        op.execute({"dag": SimpleNamespace(dag_id="patch_fleet"), "run_id": "manual__t1"})
    assert [r.path for r in cloud.sent(method="POST")] == ["/v2/authentication/login"]
