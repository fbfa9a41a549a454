"""Registers patchflow with Airflow: its pages in the UI and its Patch Tuesday timetable.

This is the only module Airflow's plugin scan imports (see plugins/.airflowignore); the
``patchflow`` package itself is imported normally by DAGs, workers and the triggerer.

The run tab is an external view with ``destination: dag_run``. Airflow 3.3 shows such a tab on
the runs of every DAG (its UI filters plugin tabs by destination only; there is no per-DAG
setting), so the page behind it explains itself on runs of other DAGs (``patchflow.board``).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from patchflow.timetables import PatchTuesdayTimetable
from patchflow.web import URL_PREFIX, create_app

PREFIX = URL_PREFIX.lstrip("/")


class PatchflowPlugin(AirflowPlugin):
    name = "patchflow"
    # the scheduler and the DAG processor deserialize ring DAGs' schedules through this registration
    timetables = [PatchTuesdayTimetable]
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "patchflow reports"}]
    external_views = [
        {"name": "Patch reports", "href": f"{PREFIX}/", "destination": "nav", "category": "browse"},
        {
            "name": "Patch run",
            "href": PREFIX + "/run/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "patch-run",
        },
    ]
