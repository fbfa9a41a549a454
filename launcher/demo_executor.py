"""What `airflow dags test --use-executor` needs so a demo run's packages roll out side by side.

``dag.test(use_executor=True)`` hands each ready task to the configured executor (LocalExecutor:
worker processes) instead of running one task at a time in its own process. Two things a
deployment has must then exist, per scenario: the Execution API the task processes report to
(``airflow api-server --apps execution``; ``dags test`` serves none itself) and a triggerer for
the rollout's deferred waits (without one a deferred task waits forever: ``dags test`` runs no
trigger and checks no trigger timeout). Both on the scenario's own SQLite DB, ports and folders.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from launcher.env import side_ports_env
from launcher.ports import free_port
from launcher.processes import ComponentExited, Components, stop_process_group

#: LocalExecutor worker processes: two packages' tasks at once, with room for a third task
LOCAL_WORKERS = 3
#: the slowest start seen on a loaded 2-core machine was well under this
READY_TIMEOUT = 180.0


def airflow_cmd(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "airflow"), *args]


def executor_env(api_port: int) -> dict[str, str]:
    """Settings for the ``dags test`` process, its workers, the API server and the triggerer."""
    return {
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__PARALLELISM": str(LOCAL_WORKERS),
        "AIRFLOW__API__WORKERS": "1",
        # the triggerer takes up a new deferral at its next heartbeat
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
        # log servers on free ports: two scenarios at once must not both want 8793/8794
        **side_ports_env(),
    }


@contextmanager
def deployment_parts(env: dict[str, str], logs: Path) -> Iterator[tuple[dict[str, str], Components]]:
    """Start the Execution API and a triggerer; yield the env for ``dags test`` and them; stop them."""
    port = free_port()
    env = {**env, **executor_env(port)}
    parts = Components(logs)
    try:
        parts.start(
            "api-server",
            airflow_cmd("api-server", "--apps", "execution", "--host", "127.0.0.1", "--port", str(port)),
            env,
        )
        parts.start("triggerer", airflow_cmd("triggerer"), env)
        wait_ready(f"http://127.0.0.1:{port}/execution/health", parts)
        yield env, parts
    finally:
        parts.stop()


def wait_ready(url: str, parts: Components, timeout: float = READY_TIMEOUT) -> None:
    """Until the Execution API answers; a part that exits meanwhile raises ComponentExited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts.check()
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise TimeoutError(f"the Execution API did not answer at {url} within {timeout:.0f} s")


def run_watched(
    cmd: list[str], env: dict[str, str], log: Path, parts: Components, cwd: Path, poll: Callable[[], None]
) -> int:
    """Run ``cmd`` while its helpers run; stop it if one of them exits (it would wait forever)."""
    with log.open("a") as sink:
        sink.write(f"\n$ {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}\n")
        sink.flush()
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while proc.poll() is None:
                poll()
                parts.check()
                time.sleep(1)
        except BaseException:
            stop_process_group(proc)
            raise
        return proc.returncode


__all__ = ["LOCAL_WORKERS", "ComponentExited", "deployment_parts", "executor_env", "run_watched"]
