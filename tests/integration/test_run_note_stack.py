"""The run's note says which servers failed while the run is still going — in a real api-server.

The production topology (``launcher.stack.AirflowStack``: api-server, scheduler, dag-processor,
triggerer, Celery worker on PostgreSQL and Redis). The rollout writes the note through the
public REST API with the ``airflow_api`` connection; this test reads it back through the same
API, as the UI does, every second while the run is in flight. It also reads the rollout's task
logs as the UI shows them: the failure named at WARNING, one progress line per turn, and no
"too short to mask" warning from the connection.
"""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from launcher.env import SIMULATOR_TIME_SCALE, airflow_api_connection, clc_connection, time_scale_env
from launcher.stack import AirflowStack

pytestmark = pytest.mark.slow

TARGETS = ["va1e2elin01", "va1e2elin03", "va1e2ewin02"]  # win02's update fails


@pytest.fixture(scope="module")
def watched_run(e2e_simulator, tmp_path_factory):
    e2e_simulator.reset()
    home = tmp_path_factory.mktemp("note-stack")
    stack = AirflowStack(home)
    stack.extra_env.update(
        {
            # no alias in the extra: the login names it (E2E), and Airflow has nothing too short to mask
            "AIRFLOW_CONN_CLC_DEFAULT": clc_connection(
                e2e_simulator.base, login="e2e.admin", password="e2e-password"
            ),
            "AIRFLOW_CONN_AIRFLOW_API": airflow_api_connection(
                f"http://127.0.0.1:{stack.port}", login="admin", password=stack.password
            ),
            **time_scale_env(SIMULATOR_TIME_SCALE),
        }
    )
    try:
        stack.start()
        stack.wait_for_dag("patch_fleet")
        run_id = stack.trigger(
            "patch_fleet", {"server_allow_list": TARGETS, "max_concurrency": "1", "max_errors": "1"}
        )
        quoted = urllib.parse.quote(run_id, safe="")
        seen: list[tuple[str, str | None]] = []  # (run state, note) as the UI would show them
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            run = stack.api("GET", f"/api/v2/dags/patch_fleet/dagRuns/{quoted}")
            seen.append((run["state"], run.get("note")))
            if run["state"] in ("success", "failed"):
                break
            time.sleep(1)
        logs = {
            str(path): _messages(path.read_text(errors="replace"))
            for path in (home / "airflow" / "logs").rglob("*")
            if path.is_file() and "rollout" in str(path) and "windows" in str(path)
        }
        yield {
            "seen": seen,
            "logs": logs,
            "run": run,
            "tail": {n: stack.log_tail(n, 60) for n in ("worker", "api-server")},
        }
    finally:
        stack.stop()


def _messages(text: str) -> str:
    """A task log as the UI shows it: each JSON line's message (raw lines kept as they are)."""
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        out.append(
            f"{record.get('level', '')} {record.get('event', '')}" if isinstance(record, dict) else line
        )
    return "\n".join(out)


def test_the_failed_server_is_named_in_the_note_while_the_run_is_still_running(watched_run):
    running = [note for state, note in watched_run["seen"] if state == "running" and note]
    assert any("1 failed (va1e2ewin02)" in note for note in running), (
        watched_run["seen"][-20:],
        watched_run["tail"],
    )


def test_the_final_note_is_the_audits_outcome_of_every_server(watched_run):
    assert watched_run["run"]["state"] == "success", watched_run["tail"]
    final = watched_run["seen"][-1][1] or ""
    assert final.startswith("patchflow: ") and "1 failed (va1e2ewin02)" in final
    assert "in progress" not in final


def test_the_rollout_log_names_the_failure_and_never_warns_about_a_short_secret(watched_run):
    text = "\n".join(watched_run["logs"].values())
    assert "server va1e2ewin02 (VA1E2EWIN02, update fails) failed: " in text, list(watched_run["logs"])
    assert "windows_2012: 1/1 done · 0 in flight · 1 failed (va1e2ewin02: " in text
    assert "too short" not in text
