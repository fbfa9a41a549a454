"""A new run for only the servers a run did not patch: its conf and the ways to start it.

Airflow 3.3's trigger form cannot be opened pre-filled from a link (the UI reads no ``conf``
from the URL; only "Trigger again with config" on a run re-uses that run's whole conf), so the
board offers the conf itself, a button that asks Airflow's REST API with the person's own
session, and the same request as a CLI and a curl command to copy.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The run's settings that carry over to the new run unchanged (the DAG's form parameters).
CARRIED_OVER = (
    "account_alias",
    "data_centers",
    "groups",
    "server_deny_list",
    "patch_debug_mode",
    "maintenance_mode",
    "max_concurrency",
    "max_errors",
    "server_timeout_minutes",
    "snapshot",
    "snapshot_expiration_days",
    "snapshot_keep",
    "revert_on_failure",
)


@dataclass(frozen=True)
class Rerun:
    """Everything needed to start the new run, each form ready to show or copy."""

    dag_id: str
    server_ids: list[str]
    conf: dict[str, Any]

    @property
    def conf_json(self) -> str:
        return json.dumps(self.conf, indent=2)

    @property
    def request_body(self) -> str:
        """The REST API's body: a manual run now (``logical_date`` null) with the conf."""
        return json.dumps({"logical_date": None, "conf": self.conf})

    @property
    def cli(self) -> str:
        return f"airflow dags trigger {shlex.quote(self.dag_id)} --conf {shlex.quote(json.dumps(self.conf))}"

    @property
    def curl(self) -> str:
        """The REST call; ``$AIRFLOW_URL`` and ``$AIRFLOW_TOKEN`` are left to the shell."""
        url = f'"$AIRFLOW_URL/api/v2/dags/{self.dag_id}/dagRuns"'
        return (
            f'curl -X POST {url} -H "Authorization: Bearer $AIRFLOW_TOKEN" '
            f'-H "Content-Type: application/json" -d {shlex.quote(self.request_body)}'
        )


def rerun_for(dag_id: str, settings: Mapping[str, Any], server_ids: Iterable[str]) -> Rerun | None:
    """The run that retries ``server_ids`` with the original settings; None when there is none to retry.

    The allow-list is replaced by the servers and ``dry_run`` is off; scope filters and rate
    limits stay as they were, so the new run treats each server exactly as the first one did.
    """
    ids = sorted(dict.fromkeys(str(s) for s in server_ids))
    if not ids:
        return None
    conf = {key: settings[key] for key in CARRIED_OVER if key in settings and settings[key] is not None}
    conf |= {"server_allow_list": ids, "dry_run": False}
    return Rerun(dag_id=dag_id, server_ids=ids, conf=conf)
