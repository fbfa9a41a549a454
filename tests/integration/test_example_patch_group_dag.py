"""example_patch_group end to end with `dag.test()` against a real simulator process on loopback.

The group (tests/fleets/patch_group.yaml) holds a server whose patch fails, one that needs three
reboot cycles, one already in maintenance, one of another OS and one switched off; a server of
another group must stay untouched. The assertions read what the simulator saw.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.env import SIMULATOR_TIME_SCALE, clc_connection, time_scale_env
from launcher.processes import SimulatorProcess
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.slow

EXPECTED = {
    "va1grpapp01": "patched",
    "va1grpbat01": "patched",  # in the sub-group Batch: three reboot cycles
    "va1grpapp02": "failed",
    "va1grpapp03": "patched",
    "va1grpwin01": "skipped_unsupported_os",
    "va1grpoff01": "skipped_not_running",
}
ATTEMPTED = {s for s, st in EXPECTED.items() if st in {"patched", "failed"}}


@pytest.fixture(scope="module")
def group_simulator(tmp_path_factory):
    from tests.sim_client import SimulatorClient

    log = tmp_path_factory.mktemp("sim") / "simulator.log"
    fleet = ROOT / "tests" / "fleets" / "patch_group.yaml"
    with SimulatorProcess(fleet, time_scale=SIMULATOR_TIME_SCALE, log_path=log) as sim:
        yield SimulatorClient(sim.base_url)


@pytest.fixture(scope="module")
def group_run(group_simulator, airflow_db, tmp_path_factory):
    from airflow.dag_processing.dagbag import DagBag

    tmp = tmp_path_factory.mktemp("group")
    monkeypatch = pytest.MonkeyPatch()
    env = {
        "AIRFLOW_CONN_CLC_DEFAULT": clc_connection(
            group_simulator.base, alias="GRP", login="grp.admin", password="grp-password"
        ),
        "PATCHFLOW_ARTIFACTS": str(tmp / "artifacts"),
        "PATCHFLOW_REPORTS": str(tmp / "reports"),
        **time_scale_env(SIMULATOR_TIME_SCALE),
    }
    try:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag("example_patch_group")
        # real minutes, scaled like everything else: 36 s at 0.01, far more than any server needs
        dag_run = dag.test(
            run_conf={"group": "Payments", "package": "linux_yum", "server_timeout_minutes": 60}
        )
    finally:
        monkeypatch.undo()
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    (pack,) = sorted((tmp / "reports" / "runs").glob("*/audit.json"))
    return dag_run, states, json.loads(pack.read_text()), group_simulator.counters(), tmp


def test_the_failed_server_fails_the_run_after_the_release_and_the_audit(group_run):
    dag_run, states = group_run[:2]
    assert dag_run.state == "failed"
    assert states == {
        "execute_package": "success",
        "wait_for_patching": "failed",
        "release_maintenance": "success",
        "audit": "success",
        "run_verdict": "failed",
    }


def test_one_audit_row_per_server_of_the_group_and_its_sub_group(group_run):
    rows = {r["server_id"]: r for r in group_run[2]["servers"]}
    assert {s: r["state"] for s, r in rows.items()} == EXPECTED  # va1grpoth01 is not in the group
    assert "patched by windows_2012, not by linux_yum" in rows["va1grpwin01"]["reason"]
    failed = rows["va1grpapp02"]
    assert failed["patches_failed"] == 1 and failed["patches_installed"] == 1
    assert "1 of 2 patches failed" in failed["reason"]


def test_the_server_with_three_reboot_cycles_is_followed_to_its_end(group_run):
    row = {r["server_id"]: r for r in group_run[2]["servers"]}["va1grpbat01"]
    # three cycles and a final scan: 4 attempts observed; reboots are not reported by the service
    assert row["attempts"] == 4 and row["patches_installed"] == 3 and row["reboots"] is None
    assert row["execution_id"] and row["started_at"] <= row["ended_at"]


def test_exactly_one_execution_per_attempted_server_and_none_elsewhere(group_run):
    counters = group_run[3]
    assert counters["executions_per_server"] == dict.fromkeys(ATTEMPTED, 1)
    assert not counters["duplicate_executions_rejected"]


def test_maintenance_is_off_again_except_where_it_was_on_before(group_run, group_simulator):
    token = group_simulator.login("grp.admin", "grp-password")
    on = {
        sid
        for sid in ATTEMPTED | {"va1grpoth01"}
        if group_simulator.server("GRP", sid, token)["details"]["inMaintenanceMode"]
    }
    assert on == {"va1grpapp03"}
    rows = {r["server_id"]: r for r in group_run[2]["servers"]}
    assert rows["va1grpapp03"]["maintenance"] == "kept_preexisting"
    assert {rows[s]["maintenance"] for s in ATTEMPTED - {"va1grpapp03"}} == {"released"}


def test_the_evidence_pack_is_in_the_chain_validated_and_holds_no_secret(group_run):
    from include.reporting.verify import verify_chain

    audit, tmp = group_run[2], group_run[4]
    assert audit["run"]["dag_id"] == "example_patch_group"
    verdict = verify_chain(tmp / "reports")
    assert verdict.ok, verdict.problems
    pack = next((tmp / "reports" / "runs").iterdir())
    assert json.loads((pack / "validation.json").read_text())["success"] is True
    for folder in (tmp / "reports", tmp / "artifacts"):
        for path in Path(folder).rglob("*"):
            if path.is_file():
                assert "grp-password" not in path.read_text(errors="replace"), path
