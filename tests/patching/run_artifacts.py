"""A patch run's artifacts as the DAG writes them (plan, rollout ledger), for the board's tests.

Ledgers are built with the rollout's own ``Ledger``/``LedgerEntry`` so their shape is the real one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from include.artifacts import run_folder, write_json
from include.patching.rollout_state import Ledger, LedgerEntry, MaintenanceOwnership, Phase, ledger_path
from include.patching.states import ServerState
from include.timefmt import utc_text

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
RUN_ID = "manual__2026-12-01T11:50:00+00:00"
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
SETTINGS = {
    "account_alias": "DEMO",
    "data_centers": [],
    "groups": [],
    "server_allow_list": [],
    "server_deny_list": [],
    "dry_run": False,
    "patch_debug_mode": False,
    "maintenance_mode": True,
    "max_concurrency": "2",
    "max_errors": "1",
    "server_timeout_minutes": 240,
    "server_timeout_seconds": 14400,
}


def plan_row(sid: str, package_key: str | None = "linux_yum", state: str | None = None, **extra: Any) -> dict:
    return {
        "id": sid,
        "name": extra.pop("name", sid.upper()),
        "package_key": package_key,
        "state": state,
    } | extra


def ago(seconds: float) -> str:
    return utc_text(NOW - timedelta(seconds=seconds))


def entry(phase: Phase = Phase.QUEUED, **fields: Any) -> LedgerEntry:
    e = LedgerEntry.new()
    e.phase = phase
    for key, value in fields.items():
        setattr(e, key, value)
    return e


def done(
    state: ServerState, wall: float | None = 100.0, reason: str = "", attempts: int | None = 1
) -> LedgerEntry:
    return entry(
        Phase.DONE, state=state, reason=reason, wall_seconds=wall, attempts=attempts, request_time=ago(500)
    )


def in_flight_run() -> tuple[list[dict], dict[str, LedgerEntry]]:
    """Five linux servers mid-rollout: patched, failed, in flight, in maintenance, waiting."""
    rows = [
        plan_row("va1demo01"),
        plan_row("va1demo02", name=HOSTILE_NAME),
        plan_row("va1demo03"),
        plan_row("va1demo04"),
        plan_row("va1demo05"),
        plan_row("va1off01", package_key=None, state="skipped_not_running"),
    ]
    entries = {
        "va1demo01": done(ServerState.PATCHED, wall=100.0, attempts=2),
        "va1demo02": done(ServerState.FAILED, wall=100.0, reason="1 of 3 patches failed"),
        "va1demo03": entry(
            Phase.SUBMITTED, request_time=ago(30), job_id="va1-42", maintenance=MaintenanceOwnership.OURS
        ),
        "va1demo04": entry(maintenance=MaintenanceOwnership.OURS, maintenance_job_id="va1-43"),
        "va1demo05": entry(),
    }
    return rows, entries


def ledger_json(entries: dict[str, LedgerEntry], package_key: str = "linux_yum") -> dict:
    return {
        "version": 1,
        "package_key": package_key,
        "alias": "DEMO",
        "order": list(entries),
        "servers": {sid: e.to_json() for sid, e in entries.items()},
    }


def write_run(
    artifacts: Path,
    rows: list[dict] | None,
    entries: dict[str, LedgerEntry] | None,
    *,
    run_id: str = RUN_ID,
    settings: dict | None = None,
    inventory: bool = True,
) -> Path:
    """Write what a run has written so far under ``artifacts`` (None: that artifact not yet)."""
    folder = run_folder(artifacts, "patch_fleet", run_id)
    folder.mkdir(parents=True, exist_ok=True)
    if inventory:
        write_json(folder / "inventory.json", {"servers": []})
    if rows is not None:
        write_json(
            folder / "plan.json", {"account_alias": "DEMO", "settings": settings or SETTINGS, "servers": rows}
        )
    if entries is not None:
        ledger = Ledger(ledger_path(folder, "linux_yum"), ledger_json(entries))
        ledger.save()
    return folder
