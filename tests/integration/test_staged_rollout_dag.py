"""Staged rollouts end to end: ``patch_fleet`` with ``dag.test()`` against a simulator process.

Fleet: tests/fleets/staged.yaml. Orders and overlaps are judged from the simulator's own
executions (their start and end on its clock), not from what the DAG reports: stages follow each
other, a canary failure or an unhealthy server halts everything after its stage, the servers of a
cluster are never patched at the same time, and an approval between the first stage and the rest
is asked in Airflow (human-in-the-loop) and obeyed.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import pytest

from launcher.env import SIMULATOR_TIME_SCALE, clc_connection, time_scale_env
from launcher.processes import SimulatorProcess
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.slow

EVERYONE = {
    "va1stgweb00", "va1stgweb01", "va1stgweb02", "va1stgweb03", "va1stgweb04",
    "uc1stgdb01", "uc1stgdb02", "uc1stgdb03", "va1stgapp01", "va1stgapp02",
}  # fmt: skip
DB = {"uc1stgdb01", "uc1stgdb02", "uc1stgdb03"}
PROBE = "{custom[healthUrl]}"


@pytest.fixture(scope="module")
def staged_simulator(tmp_path_factory):
    from tests.sim_client import SimulatorClient

    log = tmp_path_factory.mktemp("sim") / "simulator.log"
    fleet = ROOT / "tests" / "fleets" / "staged.yaml"
    with SimulatorProcess(fleet, time_scale=SIMULATOR_TIME_SCALE, log_path=log) as sim:
        yield SimulatorClient(sim.base_url)


class Run:
    """What one dag.test run left: task states, audit rows, the package's ledger, the simulator's state."""

    def __init__(self, dag_run, tmp: Path, sim) -> None:
        self.dag_run = dag_run
        self.states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
        (pack,) = sorted((tmp / "reports" / "runs").glob("*/audit.json"))
        self.rows = {r["server_id"]: r for r in json.loads(pack.read_text())["servers"]}
        (ledger,) = sorted((tmp / "artifacts").rglob("rollout_linux_yum.ledger.json"))
        self.ledger = json.loads(ledger.read_text())
        self.sim_state = sim.call("GET", "/_sim/state")

    def state(self, sid: str) -> str:
        return self.rows[sid]["state"]

    def stage(self, sid: str) -> int:
        return self.ledger["servers"][sid]["stage"]

    def executions(self, sid: str) -> list[dict]:
        """The server's executions as the simulator ran them (start and end on its clock)."""
        ids = self.sim_state["servers"][sid]["executions"]
        return [self.sim_state["executions"][e] for e in ids]

    def window(self, sid: str) -> tuple[str, str]:
        (execution,) = self.executions(sid)
        return execution["start_time"], execution["end_time"]


def run_patch_fleet(
    sim, tmp: Path, conf: dict, *, answer: str | None = None, seen: dict | None = None, ledger: bool = True
) -> Run | None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch = pytest.MonkeyPatch()
    env = {
        "AIRFLOW_CONN_CLC_DEFAULT": clc_connection(
            sim.base, alias="STG", login="stg.admin", password="stg-password"
        ),
        "PATCHFLOW_ARTIFACTS": str(tmp / "artifacts"),
        "PATCHFLOW_REPORTS": str(tmp / "reports"),
        **time_scale_env(SIMULATOR_TIME_SCALE),
        "AIRFLOW__PATCHFLOW__HEALTH_PROBE_TIMEOUT": "5",  # loopback answers fast; a busy CI box may not
    }
    responder = None
    try:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag("patch_fleet")
        if answer is not None:
            responder = Responder(answer, seen if seen is not None else {})
            responder.start()
        # real minutes, scaled like everything else: 36 s at 0.01, far more than any server needs
        dag_run = dag.test(run_conf={"server_timeout_minutes": 60, "max_concurrency": "10", **conf})
    finally:
        if responder is not None:
            responder.stop()
        monkeypatch.undo()
    return Run(dag_run, tmp, sim) if ledger else None  # a dry run writes no ledger


class Responder(threading.Thread):
    """A person answering the approval: what Airflow's API does when someone answers on the task's
    Required actions page (records the response and resumes the parked task instance). An error
    fails the parked task, so that dag.test ends and the test shows it instead of waiting for ever."""

    def __init__(self, answer: str, seen: dict) -> None:
        super().__init__(daemon=True)
        self.answer, self.seen, self._done = answer, seen, threading.Event()

    def stop(self) -> None:
        self._done.set()
        self.join(10)

    def run(self) -> None:
        while not self._done.is_set():
            time.sleep(0.5)
            try:
                if self._answer():
                    return
            except Exception as exc:
                self.seen["error"] = repr(exc)
                self._give_up()
                return

    @staticmethod
    def _parked(session):
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.state import TaskInstanceState

        return (
            session.query(TaskInstance)
            .filter(
                TaskInstance.dag_id == "patch_fleet",
                TaskInstance.task_id == "patch_linux_yum.approve",
                TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
            )
            .one_or_none()
        )

    def _answer(self) -> bool:
        from airflow._shared.timezones import timezone
        from airflow.models.hitl import HITLDetail
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.session import create_session

        with create_session() as session:
            ti = self._parked(session)
            detail = None if ti is None else session.get(HITLDetail, ti.id)
            if ti is None or detail is None:
                return False
            self.seen["body"], self.seen["subject"] = detail.body, detail.subject
            detail.responded_by = {"id": "7", "name": "alice"}
            detail.responded_at = timezone.utcnow()
            detail.chosen_options = [self.answer]
            detail.params_input = {"comment": "canary looks fine" if self.answer == "Approve" else "no"}
            session.add(detail)
            event = TriggerEvent(detail.as_resume_event_payload())
            handle_event_submit(event, task_instance=ti, session=session)
            return True

    def _give_up(self) -> None:
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState

        with create_session() as session:
            ti = self._parked(session)
            if ti is not None:
                ti.state = TaskInstanceState.FAILED


@pytest.fixture(scope="module")
def four_stages(staged_simulator, airflow_db, tmp_path_factory):
    staged_simulator.reset()
    conf = {
        "waves": ["1", "2", "3", "100%"],
        "health_probe": PROBE,
        "server_deny_list": ["VA1STGWEB00"],
    }
    return run_patch_fleet(staged_simulator, tmp_path_factory.mktemp("four"), conf)


def test_a_four_stage_rollout_patches_every_server_stage_after_stage(four_stages):
    run = four_stages
    assert run.dag_run.state == "success", run.states
    ours = EVERYONE - {"va1stgweb00"}
    assert {sid: run.state(sid) for sid in ours} == dict.fromkeys(ours, "patched")
    assert [len(s["servers"]) for s in run.ledger["stages"]] == [1, 2, 3, 3]
    by_stage: dict[int, list[str]] = {}
    for sid in ours:
        by_stage.setdefault(run.stage(sid), []).append(sid)
    for stage in (2, 3, 4):
        previous_end = max(run.window(s)[1] for s in by_stage[stage - 1])
        first_start = min(run.window(s)[0] for s in by_stage[stage])
        assert first_start >= previous_end, (stage, by_stage)
    assert all(run.ledger["servers"][s]["health"].startswith("healthy") for s in ours)
    assert run.executions("va1stgweb00") == []  # denied: never touched


def test_no_two_servers_of_a_cluster_are_patched_at_once_nor_all_in_one_stage(four_stages):
    run = four_stages
    windows = sorted(run.window(s) for s in DB)
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start >= end, windows
    assert len({run.stage(s) for s in DB}) > 1


def test_the_maintenance_of_every_server_is_released(four_stages):
    run = four_stages
    assert not any(s["inMaintenanceMode"] for s in run.sim_state["servers"].values())
    assert {run.rows[s]["maintenance"] for s in EVERYONE - {"va1stgweb00"}} == {"released"}


def test_a_canary_failure_halts_everything_after_the_first_stage(staged_simulator, airflow_db, tmp_path):
    staged_simulator.reset()
    run = run_patch_fleet(staged_simulator, tmp_path, {"waves": ["1", "2", "100%"]})
    assert run.ledger["stages"][0]["servers"] == ["va1stgweb00"]  # the failing server is the canary
    assert run.state("va1stgweb00") == "failed"
    rest = EVERYONE - {"va1stgweb00"}
    assert {run.state(s) for s in rest} == {"not_attempted"}
    assert {run.rows[s]["reason"] for s in rest} == {
        "rollout halted: stage 1 of 3 used up the error budget (1 errors > max_errors 0)"
    }
    assert all(run.executions(s) == [] for s in rest)  # the simulator never saw them patched
    assert run.states["patch_linux_yum.rollout"] == "failed" and run.dag_run.state == "failed"
    assert run.states["patch_linux_yum.release_maintenance"] == "success"
    assert run.states["audit"] == "success"


def test_an_unhealthy_server_fails_its_stage_and_nothing_after_it_starts(
    staged_simulator, airflow_db, tmp_path
):
    staged_simulator.reset()
    staged_simulator.fault(kind="unhealthy_after_patch", server="va1stgapp01")
    conf = {
        "waves": ["1", "2", "100%"],
        "health_probe": PROBE,
        "server_deny_list": ["VA1STGWEB00"],
        "max_errors": "5",  # within budget: the health gate alone halts it
    }
    run = run_patch_fleet(staged_simulator, tmp_path, conf)
    assert run.state("va1stgapp01") == "unhealthy"
    assert "answered HTTP 503" in run.rows["va1stgapp01"]["reason"]
    stage = run.stage("va1stgapp01")
    later = [s for s in EVERYONE - {"va1stgweb00"} if run.stage(s) > stage]
    assert later and {run.state(s) for s in later} == {"not_attempted"}
    assert all(run.executions(s) == [] for s in later)
    assert all(f"stage {stage} of 3 failed its health gate" in run.rows[s]["reason"] for s in later)
    assert run.ledger["halt"]["stage"] == stage
    assert run.dag_run.state == "failed"
    assert not any(s["inMaintenanceMode"] for s in run.sim_state["servers"].values())


@pytest.mark.parametrize("answer", ["Approve", "Reject"])
def test_the_rest_waits_for_a_person_and_obeys_the_answer(staged_simulator, airflow_db, tmp_path, answer):
    staged_simulator.reset()
    seen: dict = {}
    conf = {
        "waves": ["1", "100%"],
        "approval": True,
        "server_deny_list": ["VA1STGWEB00"],
        "health_check": True,
    }
    run = run_patch_fleet(staged_simulator, tmp_path, conf, answer=answer, seen=seen)
    (canary,) = run.ledger["stages"][0]["servers"]
    assert "error" not in seen, seen["error"]
    assert canary.upper() in seen["body"] and "stage 1 of" in seen["body"]  # what the person saw
    assert run.state(canary) == "patched"
    rest = EVERYONE - {"va1stgweb00", canary}
    assert run.ledger["approval"]["by"] == "alice"
    if answer == "Approve":
        assert {run.state(s) for s in rest} == {"patched"}
        assert run.dag_run.state == "success", run.states
    else:
        assert {run.state(s) for s in rest} == {"not_attempted"}
        assert all(run.executions(s) == [] for s in rest)
        assert {run.rows[s]["reason"] for s in rest} == {
            f"rollout stopped after stage 1: rejected by alice at {run.ledger['approval']['at']} (no)"
        }
        assert run.states["patch_linux_yum.rollout_rest"] == "success"  # a clean stop, not a failure
        assert run.states["audit"] == "success"
    assert not any(s["inMaintenanceMode"] for s in run.sim_state["servers"].values())


def test_a_dry_run_report_shows_the_stage_plan(staged_simulator, airflow_db, tmp_path):
    staged_simulator.reset()
    conf = {"dry_run": True, "waves": ["1", "2", "100%"], "server_deny_list": ["VA1STGWEB00"]}
    run_patch_fleet(staged_simulator, tmp_path, conf, ledger=False)
    (pack,) = sorted((tmp_path / "reports" / "runs").glob("*/audit.json"))
    stages = json.loads(pack.read_text())["run"]["stages"]["linux_yum"]["stages"]
    assert [len(s["servers"]) for s in stages] == [1, 2, 6]
    assert {s["gate"] for s in stages} == {"planned"}
    db = {s["index"] for s in stages for sid in s["servers"] if sid in DB}
    assert len(db) > 1  # the cluster is split in the plan too
    html = (pack.parent / "report.html").read_text()
    assert 'data-stage="linux_yum:1" data-gate="planned"' in html
    assert all(
        ex == []
        for ex in (staged_simulator.call("GET", "/_sim/state")["servers"][s]["executions"] for s in EVERYONE)
    )
