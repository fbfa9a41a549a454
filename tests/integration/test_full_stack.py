"""The production topology, for real: api-server, scheduler, dag-processor, triggerer and a Celery
worker on a fresh PostgreSQL database with Redis, driving the simulator over HTTP.

The run is triggered through Airflow's REST API with a conf, and the worker is killed right after
its first Execute Package request was answered (before the answer was recorded). Airflow retries
the task; the retry must reconcile, not re-submit: the simulator's counters show one execution per
server (I1). This is also the only test in which the trigger runs in a real triggerer process.
"""

from __future__ import annotations

import json

import pytest

from include.patching.chaos import CRASH_AFTER_SUBMIT
from launcher.env import SIMULATOR_TIME_SCALE, clc_connection, time_scale_env
from launcher.stack import AirflowStack

pytestmark = pytest.mark.slow

TARGETS = ["va1e2elin01", "va1e2elin02", "va1e2elin03"]


@pytest.fixture(scope="module")
def stack_run(e2e_simulator, tmp_path_factory):
    e2e_simulator.reset()
    home = tmp_path_factory.mktemp("stack")
    marker = home / "chaos" / "crashed-after-submit"
    stack = AirflowStack(
        home,
        extra_env={
            "AIRFLOW_CONN_CLC_DEFAULT": clc_connection(
                e2e_simulator.base, alias="E2E", login="e2e.admin", password="e2e-password"
            ),
            CRASH_AFTER_SUBMIT: str(marker),
            **time_scale_env(SIMULATOR_TIME_SCALE),
        },
    )
    try:
        stack.start()
        stack.wait_for_dag("patch_fleet")
        stack.wait_for_dag("compliance_report")
        stack.api("PATCH", "/api/v2/dags/compliance_report", {"is_paused": False})
        run_id = stack.trigger(
            "patch_fleet",
            # real minutes x time_scale (144 s): outlives the worker's 30 s retry delay after the crash
            {"server_allow_list": TARGETS, "max_concurrency": "2", "server_timeout_minutes": 240},
        )
        run = stack.wait_for_run("patch_fleet", run_id, timeout=600)
        tis = {ti["task_id"]: ti for ti in stack.task_instances("patch_fleet", run_id)}
        compliance = _wait_for_compliance(stack)
        reports_page = _get_page(stack, "/patchflow/")
        anonymous_page = _get_page(stack, "/patchflow/", auth=False)
        yield {
            "run": run,
            "tis": tis,
            "counters": e2e_simulator.counters(),
            "marker": marker,
            "trigger_logs": [
                f.read_text(errors="replace")
                for f in (home / "airflow" / "logs").rglob("*rollout*/*.trigger.*")
            ],
            "compliance": compliance,
            "reports_page": reports_page,
            "anonymous_page": anonymous_page,
            "run_id": run_id,
            "logs": {n: stack.log_tail(n, 60) for n in ("scheduler", "worker", "triggerer")},
        }
    finally:
        stack.stop()


def _get_page(stack: AirflowStack, path: str, *, auth: bool = True) -> tuple[int, str]:
    """GET a plugin page from the real api-server, authenticated like the UI (bearer token)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{stack.port}{path}")
    if auth:
        req.add_header("Authorization", f"Bearer {stack.token()}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _wait_for_compliance(stack: AirflowStack) -> list[dict]:
    import time

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        runs = stack.api("GET", "/api/v2/dags/compliance_report/dagRuns")["dag_runs"]
        if runs and runs[0]["state"] in ("success", "failed"):
            return runs
        time.sleep(3)
    return stack.api("GET", "/api/v2/dags/compliance_report/dagRuns")["dag_runs"]


def test_the_run_triggered_over_rest_succeeds(stack_run):
    assert stack_run["run"]["state"] == "success", json.dumps(stack_run["logs"], indent=1)[-4000:]
    assert stack_run["run"]["conf"]["server_allow_list"] == TARGETS
    tis = stack_run["tis"]
    assert tis["patch_linux_yum.rollout"]["state"] == "success"
    assert tis["patch_windows_2012.rollout"]["state"] == "skipped"
    assert tis["audit"]["state"] == "success"


def test_the_worker_died_after_the_post_and_the_retry_did_not_patch_twice(stack_run):
    assert stack_run["marker"].exists(), "the crash fault point never fired"
    assert stack_run["tis"]["patch_linux_yum.rollout"]["try_number"] == 2
    assert stack_run["counters"]["executions_per_server"] == dict.fromkeys(TARGETS, 1)


def test_the_trigger_ran_in_the_real_triggerer(stack_run):
    """The triggerer writes each trigger's log next to the task's: our trigger loaded and fired there."""
    logs = "\n".join(stack_run["trigger_logs"])
    assert "patchflow.triggers.patching.PatchCompletionTrigger" in logs, logs[-3000:]
    assert "Trigger fired event" in logs and "'state': 'completed'" in logs
    assert "Trigger failed" not in logs and "ModuleNotFoundError" not in logs


def test_the_audit_asset_started_the_compliance_report(stack_run):
    runs = stack_run["compliance"]
    assert runs and runs[0]["run_type"] == "asset_triggered"
    assert runs[0]["state"] == "success"


def test_the_reports_page_in_the_api_server_lists_the_run(stack_run):
    status, page = stack_run["reports_page"]
    assert status == 200, page[:500]
    assert stack_run["run_id"] in page and "report.html" in page
    assert stack_run["anonymous_page"][0] in (401, 403), "reports must not be public"
