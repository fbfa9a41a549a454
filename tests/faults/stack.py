"""The fault matrix on real Airflow components: one stack per module, scenarios in sequence.

The stack is the full-stack test's (``launcher.stack.AirflowStack``: api-server,
scheduler, dag-processor, triggerer and a Celery worker on PostgreSQL and Redis). Every crash
point of ``include.patching.chaos`` is configured at start with a marker file that already
exists, which keeps it disarmed; a scenario arms one by deleting its marker, and the point
re-creates it when it fires (once). Between scenarios the simulator is reset.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from include.patching.chaos import (
    CRASH_AFTER_CREATE_SNAPSHOT,
    CRASH_AFTER_START_MAINTENANCE,
    CRASH_AFTER_STOP_MAINTENANCE,
    CRASH_AFTER_SUBMIT,
)
from launcher.env import PROJECT_ROOT
from launcher.stack import COMPONENTS, AirflowStack
from tests.faults.harness import (
    SETTLE_SECONDS,
    Lab,
    ScenarioResult,
    connection,
    files_as_text,
    find_audit,
    timing_env,
)
from tests.faults.invariants import RunRecord

DEFAULT_QUEUE_DELAY = 2.0
"""The simulator's own ``queue_delay`` setting (a reset keeps settings)."""
CRASH_POINTS = (
    CRASH_AFTER_START_MAINTENANCE,
    CRASH_AFTER_SUBMIT,
    CRASH_AFTER_STOP_MAINTENANCE,
    CRASH_AFTER_CREATE_SNAPSHOT,
)
Disturbance = Callable[["FaultStack", str], bool]
"""Acts on the running stack; returns whether the disturbance happened."""


class FaultStack:
    """An ``AirflowStack`` wired to one simulator, with disarmed crash points."""

    def __init__(self, lab: Lab, home: Path) -> None:
        self.lab, self.home = lab, home
        self.markers = {name: home / "chaos" / name.lower() for name in CRASH_POINTS}
        for marker in self.markers.values():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("disarmed\n")
        env = {
            "AIRFLOW_CONN_CLC_DEFAULT": connection(lab.sim.base),
            **{name: str(marker) for name, marker in self.markers.items()},
            **timing_env(),
        }
        self.stack = AirflowStack(home, extra_env=env)
        self.disturbed = False

    def start(self) -> None:
        self.stack.start()
        self.stack.wait_for_dag("patch_fleet")
        self.stack.wait_for_dag("compliance_report")
        self.stack.api("PATCH", "/api/v2/dags/compliance_report", {"is_paused": True})

    def stop(self) -> None:
        self.stack.stop()

    # --- chaos ---------------------------------------------------------------------------

    def arm(self, crash_point: str) -> None:
        self.markers[crash_point].unlink()

    def fired(self, crash_point: str) -> bool:
        marker = self.markers[crash_point]
        return marker.exists() and "fired" in marker.read_text()

    def disarm_all(self) -> None:
        for marker in self.markers.values():
            if not marker.exists():
                marker.write_text("disarmed\n")

    def kill_and_restart(self, component: str, pause: float = 3.0) -> None:
        """SIGKILL a component's whole process group, then start it again as the stack did."""
        proc = self.stack.procs[component]
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(pause)
        args = [a.format(port=self.stack.port) for a in COMPONENTS[component]]
        log = (self.home / "logs" / f"{component}.log").open("a")
        self.stack.procs[component] = subprocess.Popen(
            [self.stack._airflow(), *args],
            env=self.stack.env,
            cwd=PROJECT_ROOT,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_for_task_state(self, run_id: str, task_id: str, state: str, timeout: float = 180.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = {t["task_id"]: t["state"] for t in self.stack.task_instances("patch_fleet", run_id)}
            if states.get(task_id) == state:
                return True
            time.sleep(1)
        return False

    # --- one run -------------------------------------------------------------------------

    def run(
        self, conf: dict[str, Any], *, bound: float = 240.0, disturb: Disturbance | None = None
    ) -> ScenarioResult:
        """Trigger ``patch_fleet`` over the REST API, disturb it, wait for its end (killed at ``bound``)."""
        before = self.lab.snapshot()
        started = time.monotonic()
        run_id = self.stack.trigger("patch_fleet", conf)
        self.disturbed = disturb(self, run_id) if disturb is not None else False
        state = self._wait(run_id, bound - (time.monotonic() - started))
        wall = time.monotonic() - started
        after = self.lab.snapshot()
        self.lab.sim.advance(SETTLE_SECONDS)
        settled = self.lab.snapshot()
        tasks = {
            t["task_id"]: {"state": t["state"], "try_number": t["try_number"]}
            for t in self.stack.task_instances("patch_fleet", run_id)
        }
        log = "\n".join(self.stack.log_tail(name, 400) for name in ("scheduler", "worker", "triggerer"))
        record = RunRecord(
            run_id=run_id,
            state=state,
            wall_seconds=wall,
            bound_seconds=bound,
            audit=find_audit(self.home / "reports", run_id),
            texts={**self._texts(run_id), "component logs": log},
            tasks=tasks,
        )
        return ScenarioResult(before, after, settled, record, log)

    def _wait(self, run_id: str, timeout: float) -> str | None:
        """The run's final state, or None after failing it by hand when it outlived its bound."""
        try:
            return self.stack.wait_for_run("patch_fleet", run_id, timeout=max(timeout, 1.0))["state"]
        except TimeoutError:
            quoted = urllib.parse.quote(run_id, safe="")
            self.stack.api("PATCH", f"/api/v2/dags/patch_fleet/dagRuns/{quoted}", {"state": "failed"})
            return None

    def _texts(self, run_id: str) -> dict[str, str]:
        folders = (
            self.home / "logs",
            self.home / "airflow" / "logs",
            self.home / "artifacts",
            self.home / "reports",
        )
        return {**files_as_text(self.home, *folders), **self._xcom_texts(run_id)}

    def _xcom_texts(self, run_id: str) -> dict[str, str]:
        """The run's XCom values, read from the stack's PostgreSQL database."""
        query = (
            "SELECT task_id || '.' || key || ' ' || value::text FROM xcom "
            f"WHERE dag_id = 'patch_fleet' AND run_id = '{run_id.replace(chr(39), chr(39) * 2)}'"
        )
        out = subprocess.run(
            [*self.stack.services.psql_args(self.stack.db), "-Atc", query],
            capture_output=True,
            text=True,
            check=False,
        )
        return {"XCom (PostgreSQL)": out.stdout}

    def reset(self) -> None:
        """Back to a clean simulator and disarmed crash points, with nothing of the last run running."""
        self.disarm_all()
        self.disturbed = False
        self.lab.sim.call("POST", "/_sim/reset")
        self.lab.sim.configure(queue_delay=DEFAULT_QUEUE_DELAY)
