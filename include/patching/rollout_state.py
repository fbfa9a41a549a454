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

from typing import Any

from include.artifacts import PathLike, read_json, write_json
from include.patching.api_shapes import iso
from include.patching.backoff import utcnow

QUEUED, SUBMITTING, SUBMITTED, DONE = "queued", "submitting", "submitted", "done"
IN_FLIGHT = frozenset({SUBMITTING, SUBMITTED})
#: Maintenance values meaning "this run may have turned maintenance on": release must check.
RUN_OWNED_MAINTENANCE = frozenset({"requested", "ours"})


def ledger_path(run_folder: PathLike, package_key: str) -> PathLike:
    return run_folder / f"rollout_{package_key}.ledger.json"


def results_path(run_folder: PathLike, package_key: str) -> PathLike:
    return run_folder / f"results_{package_key}.json"


def new_entry(*, preexisting_maintenance: bool = False) -> dict[str, Any]:
    return {
        "phase": QUEUED,
        "maintenance": "preexisting" if preexisting_maintenance else "none",
        "maintenance_released": False,
        "maintenance_job_id": None,
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
        return [sid for sid, e in self.ordered() if e["maintenance"] in RUN_OWNED_MAINTENANCE]
