"""Keep the DAG run's note saying how its servers are doing (``include.patching.run_outcome``).

The note is what Airflow shows in the run's header and the runs list, so a run whose servers
failed within the error budget no longer reads as plain green, and it shows while the run is
still going: each rollout turn writes the whole run's line (from the plan and every package's
ledger), and the audit writes the final one from the sealed rows.

The note is a courtesy, never a reason to fail: without an ``airflow_api`` connection it is
not written (said once per task process at INFO), and an API error is logged as a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from include.artifacts import PathLike, read_json
from include.patching.packages import PACKAGES
from include.patching.rollout_state import ledger_path
from include.patching.run_outcome import live_states, merge_note, run_line

log = logging.getLogger(__name__)
_said_not_configured = False


def live_line(folder: PathLike, plan: Mapping[str, Any]) -> str:
    """The run's line now, from its plan and the ledgers in the run folder written so far."""
    ledgers = {}
    for package in PACKAGES:
        path = ledger_path(folder, package.key)
        ledgers[package.key] = read_json(path) if path.exists() else None
    return run_line(live_states(plan, ledgers))


def publish(context: Any, line: str, *, conn_id: str | None = None, logger: Any = log) -> bool:
    """Put ``line`` into the run's note (a person's own lines are kept); True if it was written."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from patchflow.hooks.airflow_api import DEFAULT_CONN_ID, AirflowApiHook

    global _said_not_configured
    run = context["dag_run"]
    dag_id, run_id = run.dag_id, run.run_id
    hook = AirflowApiHook(conn_id or DEFAULT_CONN_ID)
    try:
        current = hook.get_dag_run(dag_id, run_id).get("note")
        note = merge_note(current, line)
        if note == (current or ""):
            return False
        hook.set_dag_run_note(dag_id, run_id, note)
    except AirflowNotFoundException:
        if not _said_not_configured:
            logger.info(
                "Run note not kept: no %r connection to Airflow's REST API (see README)",
                hook.airflow_api_conn_id,
            )
            _said_not_configured = True
        return False
    except Exception as exc:
        logger.warning("Run note not updated (%s: %s); the run goes on", type(exc).__name__, exc)
        return False
    return True
