"""A real Airflow deployment in local processes: the production topology without Docker.

api-server, scheduler, dag-processor, triggerer and a Celery worker, on a fresh PostgreSQL
database with Redis as the Celery broker — both private servers started for this stack on free
ports and removed on stop (``launcher.services``), never a service someone else runs. The
full-stack test, the fault matrix and the makespan benchmark use it; nothing is mocked.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from launcher.env import PROJECT_ROOT, SIMPLE_AUTH_MANAGER, airflow_env, side_ports_env
from launcher.ports import free_port
from launcher.processes import Components
from launcher.services import Services

COMPONENTS = {
    "api-server": ["api-server", "--port", "{port}", "--host", "127.0.0.1"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
    "worker": ["celery", "worker", "--concurrency", "4"],
}


class AirflowStack:
    """Start with ``start()``, talk to it with ``api()``, always ``stop()`` (removes its servers)."""

    def __init__(self, home: Path, *, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.db = f"patchflow_{secrets.token_hex(4)}"
        self.port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.services = Services()
        self.extra_env = extra_env or {}
        self.components = Components(home / "logs")
        #: the running components by name (the fault matrix kills and restarts them)
        self.procs: dict[str, subprocess.Popen] = self.components.procs
        self.env: dict[str, str] = {}
        self._token = ""

    def start(self, timeout: float = 240.0) -> None:
        self.services.start()
        self.services.psql(f'CREATE DATABASE "{self.db}"')
        passwords = self.home / "passwords.json"
        self.home.mkdir(parents=True, exist_ok=True)
        passwords.write_text(json.dumps({"admin": self.password}))
        dsn = self.services.dsn(self.db)
        self.env = airflow_env(
            self.home / "airflow",
            sql_alchemy_conn=dsn,
            executor="CeleryExecutor",
            extra={
                "AIRFLOW__CELERY__BROKER_URL": self.services.redis_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.services.dsn(self.db, "postgresql"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__CELERY__WORKER_LOG_SERVER_PORT": str(free_port()),
                **side_ports_env(),
                **self.extra_env,
            },
        )
        subprocess.run(
            [self._airflow(), "db", "migrate"],
            env=self.env,
            check=True,
            capture_output=True,
            cwd=PROJECT_ROOT,
        )
        for name, args in COMPONENTS.items():
            cmd = [self._airflow(), *(a.format(port=self.port) for a in args)]
            self.components.start(name, cmd, self.env)
        self._wait_healthy(timeout)

    def _airflow(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.components.check()
            try:
                health = self.api("GET", "/api/v2/monitor/health", auth=False)
                if health.get("triggerer", {}).get("status") == "healthy" and (
                    health.get("scheduler", {}).get("status") == "healthy"
                ):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(2)
        raise RuntimeError(
            "the Airflow stack did not become healthy in time:\n" + self.log_tail("api-server")
        )

    def log_tail(self, name: str, lines: int = 40) -> str:
        return self.components.log_tail(name, lines)

    def token(self) -> str:
        if not self._token:
            body = self.api(
                "POST", "/auth/token", {"username": "admin", "password": self.password}, auth=False
            )
            self._token = body["access_token"]
        return self._token

    def api(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        """Call Airflow's REST API; returns the decoded JSON body (raises on HTTP errors)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token()}")
        with urllib.request.urlopen(req, timeout=120) as resp:  # a loaded shared machine answers late
            raw = resp.read()
        return json.loads(raw) if raw else None

    def wait_for_dag(self, dag_id: str, timeout: float = 180.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.api("GET", f"/api/v2/dags/{dag_id}")
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
            time.sleep(2)
        raise RuntimeError(f"DAG {dag_id} was not parsed in time:\n{self.log_tail('dag-processor')}")

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return run["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600.0) -> dict:
        deadline = time.monotonic() + timeout
        quoted = urllib.parse.quote(run_id, safe="")
        while time.monotonic() < deadline:
            try:
                run = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")
            except TimeoutError:  # a busy shared machine: the api-server answers late, ask again
                continue
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(3)
        raise TimeoutError(f"run {run_id} did not finish within {timeout:.0f} s")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = urllib.parse.quote(run_id, safe="")
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=1000")[
            "task_instances"
        ]

    def stop(self) -> None:
        self.components.stop()
        self.services.stop()
