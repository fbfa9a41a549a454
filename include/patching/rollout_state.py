"""The rollout ledger: durable per-server state of one package's rollout in one run.

Written atomically (``include.artifacts.write_json``) *before* every side effect
(``maintenance: requested``, ``phase: submitting`` with the request time) and again after it
(job id, outcome). Whatever dies — worker, triggerer, the task itself — the next attempt
reads this file and reconciles instead of repeating a side effect (I1), and the maintenance
release reads it to know exactly which servers this run put into maintenance (I2).

Shape (JSON)::

    {"version": 1, "package_key": "linux_yum", "package_id": "...", "alias": "DEMO",
     "created_at": "...Z", "updated_at": "...Z", "waves": 3,
     "order": ["va1demoweb01", ...],
     "servers": {"va1demoweb01": {
         "phase": "queued|submitting|submitted|done",
         "maintenance": "none|requested|ours|preexisting|refused",
         "maintenance_released": false, "maintenance_job_id": null,
         "maintenance_job_status": null, "maintenance_release": null, "maintenance_note": "",
         "request_time": "...Z", "job_id": "va1-1234", "submissions": [
             {"request_time": "...Z", "job_id": "va1-1234", "result": "submitted"}],
         "known_executions": ["VA1-100001"],
         "execution_id": null, "state": null, "reason": "", "started_at": null, "ended_at": null,
         "patches": [], "patches_installed": 0, "patches_failed": 0,
         "attempts": null, "reboots": null}}}

``attempts`` is the number of initiations the patching service listed for the execution;
``reboots`` stays null: the service does not report reboots and patchflow does not infer them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from include.artifacts import PathLike, read_json, write_json
from include.patching.api_shapes import QUEUE_FAILED, QUEUE_SUCCEEDED, iso
from include.patching.backoff import utcnow

QUEUED, SUBMITTING, SUBMITTED, DONE = "queued", "submitting", "submitted", "done"
IN_FLIGHT = frozenset({SUBMITTING, SUBMITTED})
#: Queue job statuses after which a job changes nothing any more.
JOB_TERMINAL = frozenset({QUEUE_SUCCEEDED, *QUEUE_FAILED})


class MaintenanceOwnership(StrEnum):
    """Who owns a server's maintenance mode in this run (ledger field ``maintenance``).

    Only the inventory, read before this run ever asked for maintenance, can make a server
    ``preexisting``. Once ``requested`` is written, an earlier attempt whose answer was lost
    may have switched maintenance on, so every later answer leaves the server run-owned.
    """

    NONE = "none"
    """Maintenance was never requested for the server (not started, or maintenance_mode off)."""
    REQUESTED = "requested"
    """startMaintenance is being sent (or its answer was never read): it may be on."""
    OURS = "ours"
    """The platform queued the change or said the server already was in maintenance."""
    PREEXISTING = "preexisting"
    """The inventory saw the server in maintenance before this run: never switched off."""
    REFUSED = "refused"
    """The platform refused startMaintenance; a lost earlier attempt may still have switched it on."""


class ReleaseOutcome(StrEnum):
    """What the maintenance release found or did for one server (ledger ``maintenance_release``)."""

    RELEASED = "released"
    """stopMaintenance was accepted (and, in the release task, its job succeeded)."""
    ALREADY_OFF = "already_off"
    """Checked live after every recorded maintenance-on job ended: not in maintenance (or gone)."""
    REFUSED = "refused"
    """stopMaintenance was refused or its job failed; ``maintenance_note`` holds the reason."""
    UNCONFIRMED = "unconfirmed"
    """Could not be decided (a job still running, the server unreadable); see the note."""
    KEPT_PREEXISTING = "kept_preexisting"
    """In maintenance before the run: deliberately left on."""


#: Ownership meaning "this run may have turned maintenance on": the release must check it live.
RUN_OWNED_MAINTENANCE = frozenset(
    {MaintenanceOwnership.REQUESTED, MaintenanceOwnership.OURS, MaintenanceOwnership.REFUSED}
)
#: Release outcomes meaning "not in maintenance any more".
RELEASED_OUTCOMES = frozenset({ReleaseOutcome.RELEASED, ReleaseOutcome.ALREADY_OFF})


def ledger_path(run_folder: PathLike, package_key: str) -> PathLike:
    return run_folder / f"rollout_{package_key}.ledger.json"


def results_path(run_folder: PathLike, package_key: str) -> PathLike:
    return run_folder / f"results_{package_key}.json"


def new_entry(*, preexisting_maintenance: bool = False) -> dict[str, Any]:
    return {
        "phase": QUEUED,
        "maintenance": (
            MaintenanceOwnership.PREEXISTING if preexisting_maintenance else MaintenanceOwnership.NONE
        ).value,
        "maintenance_released": False,
        "maintenance_job_id": None,
        "maintenance_job_status": None,
        "maintenance_release": None,
        "maintenance_note": "",
        "request_time": None,
        "job_id": None,
        "submissions": [],
        "execution_id": None,
        "state": None,
        "reason": "",
        "started_at": None,
        "ended_at": None,
        "patches": [],
        "patches_installed": 0,
        "patches_failed": 0,
        "attempts": None,
        "reboots": None,
    }


class Ledger:
    """In-memory view of the ledger file; ``save()`` persists it atomically."""

    def __init__(self, path: PathLike, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    @classmethod
    def exists(cls, path: PathLike) -> bool:
        return path.exists()

    @classmethod
    def load(cls, path: PathLike) -> Ledger:
        return cls(path, read_json(path))

    @classmethod
    def open(
        cls,
        path: PathLike,
        *,
        package_key: str,
        package_id: str,
        alias: str,
        targets: list[tuple[str, bool]],
    ) -> Ledger:
        """Load the ledger, or create it from ``(server_id, in_maintenance_at_inventory)`` pairs."""
        if path.exists():
            ledger = cls.load(path)
            if ledger.data.get("package_key") != package_key:
                raise ValueError(f"ledger {path} belongs to package {ledger.data.get('package_key')!r}")
            return ledger
        now = iso(utcnow())
        data = {
            "version": 1,
            "package_key": package_key,
            "package_id": package_id,
            "alias": alias,
            "created_at": now,
            "updated_at": now,
            "waves": 0,
            "order": [sid for sid, _ in targets],
            "servers": {sid: new_entry(preexisting_maintenance=pre) for sid, pre in targets},
        }
        ledger = cls(path, data)
        ledger.save()
        return ledger

    def save(self) -> None:
        self.data["updated_at"] = iso(utcnow())
        write_json(self.path, self.data)

    @property
    def alias(self) -> str:
        return self.data["alias"]

    @property
    def servers(self) -> dict[str, dict[str, Any]]:
        return self.data["servers"]

    def ordered(self) -> list[tuple[str, dict[str, Any]]]:
        return [(sid, self.servers[sid]) for sid in self.data["order"]]

    def in_phase(self, *phases: str) -> list[str]:
        return [sid for sid, e in self.ordered() if e["phase"] in phases]

    def run_owned_maintenance(self) -> list[str]:
        """Servers this run may have put into maintenance, in plan order."""
        return [sid for sid, e in self.ordered() if e["maintenance"] in RUN_OWNED_MAINTENANCE]

    def preexisting_maintenance(self) -> list[str]:
        """Servers in maintenance before the run (inventory): never switched off by it."""
        return [sid for sid, e in self.ordered() if e["maintenance"] == MaintenanceOwnership.PREEXISTING]


def record_release(entry: dict[str, Any], outcome: ReleaseOutcome, note: str = "") -> None:
    """Write one server's release outcome into its ledger entry (the audit reads it)."""
    entry["maintenance_release"] = outcome.value
    entry["maintenance_note"] = note
    entry["maintenance_released"] = outcome in RELEASED_OUTCOMES


def maintenance_job_outstanding(entry: dict[str, Any]) -> bool:
    """A maintenance-on job was queued for the server and has not been seen terminal yet."""
    return bool(entry.get("maintenance_job_id")) and entry.get("maintenance_job_status") not in JOB_TERMINAL
