"""patch_fleet's snapshot safety net end to end: `dag.test()` against a real simulator process.

The assertions read what the simulator saw and holds (snapshots, patch state, maintenance flags,
counters), not only what the audit says.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.patching import snapshots as snapshots_module
from include.patching.chaos import CRASH_AFTER_CREATE_SNAPSHOT
from launcher.env import SIMULATOR_TIME_SCALE, clc_connection, time_scale_env
from launcher.processes import SimulatorProcess
from tests.sim_client import SimulatorClient

pytestmark = pytest.mark.slow

FLEET = Path(__file__).resolve().parents[1] / "fleets" / "snapshots.yaml"
ROOT = Path(__file__).resolve().parents[2]
LIN01, LIN02, LIN03, BIG, OWN = "va1snplin01", "va1snplin02", "va1snplin03", "va1snpbig01", "va1snpown01"
ALL = (LIN01, LIN02, LIN03, BIG, OWN)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    log = tmp_path_factory.mktemp("sim") / "simulator.log"
    with SimulatorProcess(FLEET, time_scale=0.01, log_path=log) as process:
        yield SimulatorClient(process.base_url)


def run_dag(sim: SimulatorClient, tmp_path: Path, conf: dict) -> tuple:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch = pytest.MonkeyPatch()
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_CLC_DEFAULT",
            clc_connection(sim.base, alias="SNP", login="snp.admin", password="snp-password"),
        )
        monkeypatch.setenv("PATCHFLOW_ARTIFACTS", str(tmp_path / "artifacts"))
        monkeypatch.setenv("PATCHFLOW_REPORTS", str(tmp_path / "reports"))
        for key, value in time_scale_env(SIMULATOR_TIME_SCALE).items():
            monkeypatch.setenv(key, value)
        dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag("patch_fleet")
        dag_run = dag.test(run_conf={"max_errors": "5", "max_concurrency": "10", **conf})
    finally:
        monkeypatch.undo()
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    (pack,) = sorted((tmp_path / "reports" / "runs").glob("*/audit.json"))
    audit = json.loads(pack.read_text())
    validation = json.loads((pack.parent / "validation.json").read_text())
    return dag_run, states, {r["server_id"]: r for r in audit["servers"]}, validation


def cloud(sim: SimulatorClient) -> dict[str, dict]:
    """Each server's snapshot names, maintenance flag and installed patches, as the simulator holds them."""
    token = sim.login("snp.admin", "snp-password")
    state = sim.call("GET", "/_sim/state")["servers"]
    out = {}
    for sid in ALL:
        details = sim.server("SNP", sid, token)["details"]
        out[sid] = {
            "snapshots": [s["name"] for s in details["snapshots"]],
            "maintenance": details["inMaintenanceMode"],
            "installed": state[sid]["installedPatches"],
            "power": details["powerState"],
        }
    return out


@pytest.fixture(scope="module")
def required_run(sim, airflow_db, tmp_path_factory):
    """snapshot required, revert on failure, snapshots not kept; VA1SNPLIN03's restore fails."""
    sim.reset()
    owners = cloud(sim)[OWN]["snapshots"]
    sim.fault(kind="restore_fails", server=LIN03)
    conf = {"snapshot": "required", "revert_on_failure": True, "snapshot_keep": False}
    result = run_dag(sim, tmp_path_factory.mktemp("required"), conf)
    return (*result, cloud(sim), sim.counters(), owners)


def test_required_run_ends_every_server_in_its_own_state(required_run):
    rows = required_run[2]
    assert {sid: rows[sid]["state"] for sid in ALL} == {
        LIN01: "patched",
        LIN02: "reverted",
        LIN03: "revert_failed",
        BIG: "skipped_no_snapshot",
        OWN: "skipped_no_snapshot",
    }
    assert "over 1 TB" in rows[BIG]["reason"] and "belongs to its owner" in rows[OWN]["reason"]
    assert rows[LIN02]["snapshot"] == "confirmed" and rows[LIN02]["snapshot_restored"] is True
    assert required_run[3]["success"], required_run[3]["failed"]  # GX: every snapshot check passes


def test_snapshots_only_where_the_run_could_take_one_and_the_owners_untouched(required_run):
    state, counters, owners = required_run[4], required_run[5], required_run[6]
    assert counters["operations_queued"]["createSnapshot"] == 3  # LIN01-03, never BIG or OWN
    assert state[OWN]["snapshots"] == owners and owners
    assert state[LIN01]["snapshots"] == []  # deleted after the success (snapshot_keep off)
    assert required_run[2][LIN01]["snapshot_fate"] == "deleted"
    assert len(state[LIN03]["snapshots"]) == 1  # a failed revert keeps it for a person


def test_the_revert_really_rolled_the_patch_state_back_and_maintenance_is_released(required_run):
    state, counters = required_run[4], required_run[5]
    assert state[LIN02]["installed"] == []  # bash installed, tzdata failed: both applicable again
    assert state[LIN02]["power"] == "started"
    assert state[LIN03]["installed"] != []  # restore_fails: nothing rolled back
    assert counters["operations_queued"]["restoreSnapshot"] == 2
    assert not any(s["maintenance"] for s in state.values())  # I2, reverted or not
    assert required_run[2][LIN03]["maintenance"] == "released"


def test_a_reverted_server_is_not_compliant_and_a_new_run_patches_it_again(required_run, sim, tmp_path):
    from include.reporting.compliance import SUCCESS_STATES

    assert "reverted" not in SUCCESS_STATES
    _, _, rows, _ = run_dag(sim, tmp_path, {"server_allow_list": [LIN02]})
    assert rows[LIN02]["state"] == "failed" and rows[LIN02]["patches_installed"] == 1  # bash again


def test_a_worker_dying_right_after_create_snapshot_takes_no_second_one(
    sim, airflow_db, tmp_path, monkeypatch
):
    """The rollout task dies right after createSnapshot was answered; Airflow retries it; the retry
    adopts the snapshot (one per server, none twice) and patches. In dag.test the task runs in this
    process, so the crash is an exception at the crash point instead of os._exit."""
    sim.reset()
    fired = []

    def crash(name: str) -> None:
        if name == CRASH_AFTER_CREATE_SNAPSHOT and not fired:
            fired.append(name)
            raise RuntimeError("worker killed (test crash point)")

    monkeypatch.setattr(snapshots_module, "crash_point", crash)
    conf = {"snapshot": "best_effort", "server_allow_list": [LIN01, OWN]}
    _, _, rows, validation = run_dag(sim, tmp_path, conf)
    assert fired
    assert rows[LIN01]["state"] == "patched" and rows[OWN]["state"] == "patched"
    assert rows[LIN01]["snapshot"] == "confirmed" and rows[LIN01]["snapshot_fate"] == "kept"
    assert "belongs to its owner" in rows[OWN]["snapshot_note"]  # best effort: patched without
    counters = sim.counters()
    assert counters["operations_queued"]["createSnapshot"] == 1
    assert len(cloud(sim)[LIN01]["snapshots"]) == 1
    assert counters["executions_per_server"] == {LIN01: 1, OWN: 1}
    assert validation["success"]


def test_an_unhealthy_server_is_reverted_and_still_halts_its_stage(sim, airflow_db, tmp_path, monkeypatch):
    """LIN01 patches cleanly but its service answers 503 afterwards: with revert_on_failure it is
    restored to this run's snapshot (the patch broke it), the reason still says it was unhealthy,
    and its stage still fails the health gate, so OWN (the next stage) is never sent the package."""
    sim.reset()
    sim.fault(kind="unhealthy_after_patch", server=LIN01)
    monkeypatch.setenv("AIRFLOW__PATCHFLOW__HEALTH_PROBE_TIMEOUT", "5")  # loopback; a busy CI box may lag
    conf = {
        "server_allow_list": [LIN01, OWN],
        "snapshot": "best_effort",
        "revert_on_failure": True,
        "waves": ["1", "100%"],
        "health_probe": sim.base + "/health/{id}",
    }
    dag_run, states, rows, validation = run_dag(sim, tmp_path, conf)
    state, counters = cloud(sim), sim.counters()
    audit = json.loads(next((tmp_path / "reports" / "runs").glob("*/audit.json")).read_text())
    stages = audit["run"]["stages"]["linux_yum"]["stages"]
    assert stages[0]["servers"] == [LIN01]  # the canary, as planned (round-robin, then by name)
    assert rows[LIN01]["state"] == "reverted" and rows[LIN01]["snapshot_restored"] is True
    reason = rows[LIN01]["reason"]
    assert reason.startswith("patched, but unhealthy afterwards: ") and "answered HTTP 503" in reason
    assert f"reverted to snapshot {rows[LIN01]['snapshot_name']} taken by this run" in reason
    assert state[LIN01]["installed"] == [] and counters["operations_queued"]["restoreSnapshot"] == 1
    assert stages[0]["unhealthy"] == [LIN01] and stages[0]["gate"] == "failed"
    assert rows[OWN]["state"] == "not_attempted" and "failed its health gate" in rows[OWN]["reason"]
    assert sim.call("GET", "/_sim/state")["servers"][OWN]["executions"] == []
    assert not any(s["maintenance"] for s in state.values())
    assert states["patch_linux_yum.rollout"] == "failed" and dag_run.state == "failed"
    assert validation["success"], validation["failed"]
