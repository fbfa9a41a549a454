"""Join the run's plan with the rollouts' results into one audit row per inventoried server.

Every server of the plan yields exactly one row (invariant I3), also when a rollout task died
before writing its results: then the rollout ledger tells what was done to the server, and the
row says so honestly instead of claiming an outcome nobody observed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.patching.rollout_state import IN_FLIGHT
from include.patching.states import ServerState

EMPTY_RESULT: dict[str, Any] = {
    "execution_id": None,
    "queue_job_id": None,
    "patches": [],
    "patches_installed": 0,
    "patches_failed": 0,
    "attempts": None,
    "reboots": None,
    "started_at": None,
    "ended_at": None,
}
RESULT_KEYS = tuple(EMPTY_RESULT)


def _base(plan_row: Mapping[str, Any], alias: str) -> dict[str, Any]:
    return {
        "server_id": plan_row["id"],
        "server_name": plan_row.get("name") or plan_row["id"].upper(),
        "description": plan_row.get("description") or "",
        "account_alias": alias,
        "data_center": plan_row.get("data_center") or "",
        "group_id": plan_row.get("group_id"),
        "group_name": plan_row.get("group_name"),
        "os": plan_row.get("os"),
        "os_type": plan_row.get("os_type"),
        "os_family": plan_row.get("os_family") or "other",
        "package_id": plan_row.get("package_id"),
    }


def _without_result(plan_row: Mapping[str, Any], ledger: Mapping[str, Any] | None) -> dict[str, Any]:
    """State of a target whose rollout never reported it: from the ledger, never invented."""
    key = plan_row["package_key"]
    entry = ((ledger or {}).get("servers") or {}).get(plan_row["id"])
    if entry and entry.get("state"):
        return (
            {"state": entry["state"], "reason": entry.get("reason") or ""}
            | {k: entry.get(k, EMPTY_RESULT[k]) for k in RESULT_KEYS if k != "queue_job_id"}
            | {"queue_job_id": entry.get("job_id")}
        )
    if entry and entry.get("phase") in IN_FLIGHT:
        job = entry.get("job_id") or "unknown"
        return EMPTY_RESULT | {
            "state": ServerState.FAILED.value,
            "queue_job_id": entry.get("job_id"),
            "execution_id": entry.get("execution_id"),
            "reason": (
                f"the package was requested (queue job {job}) but the patch_{key} rollout ended before "
                "its outcome was read; check the patching service for this server"
            ),
        }
    return EMPTY_RESULT | {
        "state": ServerState.NOT_ATTEMPTED.value,
        "reason": f"the patch_{key} rollout did not run to completion; the package was never requested",
    }


def build_rows(
    plan: Mapping[str, Any],
    results: Mapping[str, Mapping[str, Any] | None],
    ledgers: Mapping[str, Mapping[str, Any] | None],
) -> list[dict[str, Any]]:
    """One audit row per plan row. ``results``/``ledgers`` are keyed by package key (None: missing)."""
    alias = plan.get("account_alias") or ""
    by_server: dict[str, Mapping[str, Any]] = {}
    for result in results.values():
        for row in (result or {}).get("servers") or []:
            by_server[str(row["server_id"]).lower()] = row
    rows = []
    for plan_row in plan["servers"]:
        row = _base(plan_row, alias)
        if plan_row.get("state"):
            row |= EMPTY_RESULT | {"state": plan_row["state"], "reason": plan_row.get("reason") or ""}
        elif plan_row["id"] in by_server:
            result = by_server[plan_row["id"]]
            row |= {k: result.get(k, EMPTY_RESULT[k]) for k in RESULT_KEYS}
            row |= {"state": result["state"], "reason": result.get("reason") or ""}
        else:
            row |= _without_result(plan_row, ledgers.get(plan_row["package_key"]))
        if row["patches"] is None:
            row["patches"] = []
        rows.append(row)
    return rows
