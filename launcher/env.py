"""The environment every local Airflow process of this project runs with.

`make demo`, `make up` and the integration tests all build their Airflow environment here,
so the project-local AIRFLOW_HOME, the DAG and plugin folders and the `clc_default`
connection are defined once.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

from launcher.ports import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CLC_CONN_ID = "clc_default"
CLC_CONN_ENV = "AIRFLOW_CONN_CLC_DEFAULT"
DEMO_USER = "demo.admin"
DEMO_PASSWORD = "demo-password"  # simulator-only credentials, documented in README


#: The simulator's ``--time-scale`` for the demo and the tests: 100x faster than real time.
SIMULATOR_TIME_SCALE = 0.01


def time_scale_env(time_scale: float) -> dict[str, str]:
    """Airflow settings that scale every patchflow timing like the simulator's clock.

    ``[patchflow] time_scale`` multiplies every timing default (``include.patching.tuning``)
    and the form's per-server timeout, so a run against a simulator at ``--time-scale X``
    keeps the proportions — and the races — of a production run. No floor is applied: at
    0.01 the shortest poll gap is 0.1 s, which the simulator and the triggerer handle.
    """
    return {"AIRFLOW__PATCHFLOW__TIME_SCALE": repr(float(time_scale))}


def clc_connection(
    base_url: str, *, alias: str | None = None, login: str = DEMO_USER, password: str = DEMO_PASSWORD
) -> str:
    """The JSON-form `clc_default` connection for a simulator (or real API) at ``base_url``.

    No ``account_alias`` unless asked: the login answer names the user's own alias (``DEMO``
    for the demo user). Airflow treats every connection extra as a possible secret and warns,
    in every task process that reads the connection, about a value too short to mask — and an
    alias is at most 4 characters.
    """
    base = base_url.rstrip("/")
    extra: dict[str, object] = {"patching_base_url": f"{base}/patching/rest", "timeout": 30}
    if alias:
        extra["account_alias"] = alias
    return json.dumps(
        {"conn_type": "http", "host": f"{base}/v2", "login": login, "password": password, "extra": extra}
    )


def airflow_api_connection(base_url: str, *, login: str, password: str) -> str:
    """The JSON-form `airflow_api` connection: Airflow's REST API as one of its users.

    The rollout and the audit keep the DAG run's note up to date through it (``patchflow.run_note``).
    """
    return json.dumps(
        {"conn_type": "http", "host": base_url.rstrip("/"), "login": login, "password": password}
    )


def side_ports_env() -> dict[str, str]:
    """Free ports for the servers Airflow components start besides the API server.

    The scheduler and the triggerer serve task logs on fixed ports by default (8793, 8794): a
    second stack, or an Airflow someone else runs, would make their log servers fail.
    """
    return {
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
    }


SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


#: warnings Airflow raises about its own code (``python -W`` syntax)
AIRFLOW_OWN_WARNINGS = "ignore:GitWildMatchPattern:DeprecationWarning"


def airflow_env(
    airflow_home: Path,
    *,
    sql_alchemy_conn: str | None = None,
    executor: str = "LocalExecutor",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Environment for Airflow processes: project folders, no examples, SQLite unless told otherwise."""
    airflow_home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    paths = [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn
            or f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__API_AUTH__JWT_SECRET": env.get("AIRFLOW__API_AUTH__JWT_SECRET")
            or secrets.token_hex(16),
            "PATCHFLOW_ARTIFACTS": str(airflow_home.parent / "artifacts"),
            "PATCHFLOW_REPORTS": str(airflow_home.parent / "reports"),
            "PYTHONPATH": os.pathsep.join(paths),
            "GX_ANALYTICS_ENABLED": "false",
            # Airflow 3.3 itself calls a pathspec API that pathspec 1.x deprecates: the warning
            # would open every task log a person reads, and nothing here can act on it
            "PYTHONWARNINGS": AIRFLOW_OWN_WARNINGS,
            "NO_PROXY": "127.0.0.1,localhost",
            # Airflow starts helpers (task runners, `airflow …` sub-commands) from PATH: this venv's
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        }
    )
    env.update(extra or {})
    return env
