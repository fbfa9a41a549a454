"""Airflow's own public REST API, for what a task cannot do through the Task SDK.

Airflow 3 tasks reach the metadata database only through the Execution API, and that API
has no way to change a DAG run's note (a run's ``note`` is read-only in the task context).
The public REST API (``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}``) can, with the rights
of an Airflow user: this hook logs in as the user of the ``airflow_api`` connection
(``POST /auth/token``, which the simple and the FAB auth managers both serve) and sends the
bearer token. The user needs permission to edit DAG runs of the DAG (e.g. FAB's ``Op`` role).

Connection (JSON form), e.g.::

    AIRFLOW_CONN_AIRFLOW_API='{"conn_type": "http", "host": "http://localhost:8080",
                               "login": "patchflow", "password": "…"}'
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from airflow.sdk import BaseHook

from patchflow.secrets import mask

DEFAULT_CONN_ID = "airflow_api"
#: Longest note the API accepts (``DAGRunPatchBody.note``).
NOTE_MAX_LENGTH = 1000


class AirflowApiHook(BaseHook):
    """Log in to Airflow's public REST API and read or change DAG runs.

    :param airflow_api_conn_id: HTTP connection: ``host`` = the api-server's base URL,
        ``login``/``password`` = an Airflow user allowed to edit the DAG's runs.
    :param timeout: seconds per request (a slow API must not hold up the task).
    """

    conn_name_attr = "airflow_api_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "http"
    hook_name = "Airflow REST API"

    def __init__(self, airflow_api_conn_id: str = DEFAULT_CONN_ID, *, timeout: float = 10.0) -> None:
        super().__init__()
        self.airflow_api_conn_id = airflow_api_conn_id
        self.timeout = timeout
        self._session: requests.Session | None = None
        self._base_url = ""

    def _connect(self) -> requests.Session:
        if self._session is not None:
            return self._session
        conn = self.get_connection(self.airflow_api_conn_id)
        host = (conn.host or "").rstrip("/")
        if not host:
            raise ValueError(f"connection {self.airflow_api_conn_id!r} has no host (the api-server's URL)")
        if "://" not in host:
            host = f"{conn.schema or 'http'}://{host}"
        self._base_url = f"{host}:{conn.port}" if conn.port else host
        session = requests.Session()
        answer = session.post(
            f"{self._base_url}/auth/token",
            json={"username": conn.login, "password": conn.password},
            timeout=self.timeout,
        )
        answer.raise_for_status()
        token = answer.json()["access_token"]
        mask(token)
        session.headers["Authorization"] = f"Bearer {token}"
        self._session = session
        return session

    def _run_url(self, dag_id: str, run_id: str) -> str:
        return f"{self._base_url}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"

    def get_dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        session = self._connect()
        answer = session.get(self._run_url(dag_id, run_id), timeout=self.timeout)
        answer.raise_for_status()
        return dict(answer.json())

    def set_dag_run_note(self, dag_id: str, run_id: str, note: str) -> None:
        """Replace the run's note (only the note: ``update_mask=note`` leaves its state alone)."""
        session = self._connect()
        answer = session.patch(
            self._run_url(dag_id, run_id),
            params={"update_mask": "note"},
            json={"note": note[:NOTE_MAX_LENGTH]},
            timeout=self.timeout,
        )
        answer.raise_for_status()
