"""Join the run's plan with the rollouts' results into one audit row per inventoried server.

Every server of the plan yields exactly one row (invariant I3), also when a rollout task died
before writing its results: then the rollout ledger tells what was done to the server, and the
row says so honestly instead of claiming an outcome nobody observed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from include.patching.maintenance import KEPT_PREEXISTING_NOTE
from include.patching.rollout_state import (
    IN_FLIGHT,
    RELEASED_OUTCOMES,
    LedgerEntry,
    MaintenanceOwnership,
)
from include.patching.snapshots import evidence as snapshot_evidence
from include.patching.states import ServerState


class MaintenanceResult(StrEnum):
    """Audit column ``maintenance``: what the run left behind in maintenance mode (I2).

    A closed set, like the server states: reports and the validation suite check against it.
    """

    NOT_USED = "not_used"
    """The run never asked for maintenance on the server."""
    KEPT_PREEXISTING = "kept_preexisting"
    """In maintenance before the run (inventory): left on on purpose."""
    RELEASED = "released"
    """The run may have put it into maintenance and confirmed it is out again."""
    LEFT_ON = "left_on"
    """The run may have put it into maintenance and could not confirm it is out: see the note."""


NO_RELEASE_RECORDED = (
    "release not confirmed: no release outcome was recorded (did the release_maintenance task run?)"
)

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
    "observed_at": None,
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


def _entry_in(ledger: Mapping[str, Any] | None, server_id: str) -> LedgerEntry | None:
    """A server's typed entry in a ledger file's JSON (None: not in it, or no ledger)."""
    raw = ((ledger or {}).get("servers") or {}).get(server_id)
    return None if raw is None else LedgerEntry.from_json(raw)


def _ledger_entry(
    plan_row: Mapping[str, Any], ledgers: Mapping[str, Mapping[str, Any] | None]
) -> LedgerEntry | None:
    """The server's entry in its package's rollout ledger (None: no rollout touched it)."""
    if plan_row.get("state") or not plan_row.get("package_key"):
        return None  # skipped or dry run: never a rollout target
    return _entry_in(ledgers.get(plan_row["package_key"]), plan_row["id"])


def _without_result(plan_row: Mapping[str, Any], ledger: Mapping[str, Any] | None) -> dict[str, Any]:
    """State of a target whose rollout never reported it: from the ledger, never invented."""
    key = plan_row["package_key"]
    entry = _entry_in(ledger, plan_row["id"])
    if entry and entry.state:
        data = entry.to_json()
        return (
            {"state": data["state"], "reason": entry.reason or ""}
            | {k: data.get(k, EMPTY_RESULT[k]) for k in RESULT_KEYS if k != "queue_job_id"}
            | {"queue_job_id": entry.job_id}
        )
    if entry and entry.phase in IN_FLIGHT:
        job = entry.job_id or "unknown"
        return EMPTY_RESULT | {
            "state": ServerState.FAILED.value,
            "queue_job_id": entry.job_id,
            "execution_id": entry.execution_id,
            "reason": (
                f"the package was requested (queue job {job}) but the patch_{key} rollout ended before "
                "its outcome was read; check the patching service for this server"
            ),
        }
    return EMPTY_RESULT | {
        "state": ServerState.NOT_ATTEMPTED.value,
        "reason": f"the patch_{key} rollout did not run to completion; the package was never requested",
    }


def maintenance_columns(entry: LedgerEntry | None) -> dict[str, str]:
    """``maintenance`` and ``maintenance_note`` of a server, from its rollout ledger entry.

    The ledger is the only source: the release task writes its outcome there after the
    rollout's results file was written.
    """
    if entry is not None and entry.maintenance is MaintenanceOwnership.PREEXISTING:
        note = entry.maintenance_note or KEPT_PREEXISTING_NOTE
        return {"maintenance": MaintenanceResult.KEPT_PREEXISTING.value, "maintenance_note": note}
    if entry is None or not entry.run_owned_maintenance:
        return {"maintenance": MaintenanceResult.NOT_USED.value, "maintenance_note": ""}
    if entry.maintenance_release in RELEASED_OUTCOMES:
        return {"maintenance": MaintenanceResult.RELEASED.value, "maintenance_note": ""}
    note = entry.maintenance_note or NO_RELEASE_RECORDED
    return {"maintenance": MaintenanceResult.LEFT_ON.value, "maintenance_note": note}


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
        entry = _ledger_entry(plan_row, ledgers)
        row |= maintenance_columns(entry)
        row |= snapshot_evidence(entry)
        if row["patches"] is None:
            row["patches"] = []
        rows.append(row)
    return rows
