"""Registers patchflow with Airflow: the reports pages in the UI.

This is the only module Airflow's plugin scan imports (see plugins/.airflowignore); the
``patchflow`` package itself is imported normally by DAGs, workers and the triggerer.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from patchflow.web import create_app


class PatchflowPlugin(AirflowPlugin):
    name = "patchflow"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/patchflow", "name": "patchflow reports"}]
    external_views = [
        {"name": "Patch reports", "href": "patchflow/", "destination": "nav", "category": "browse"},
        {
            "name": "Audit report",
            "href": "patchflow/runs/{RUN_ID}/report.html",
            "destination": "dag_run",
            "url_route": "patch-audit-report",
        },
    ]
