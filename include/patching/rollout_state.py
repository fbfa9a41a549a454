"""The rollout ledger: durable per-server state of one package's rollout in one run.

Written atomically (``include.artifacts.write_bytes_atomic``) *before* every side effect
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
         "known_executions": ["VA1-100001"], "not_before": null,
         "execution_id": null, "state": null, "reason": "", "started_at": null, "ended_at": null,
         "observed_at": null, "patches": [], "patches_installed": 0, "patches_failed": 0,
         "attempts": null, "reboots": null, "wall_seconds": null,
         "stage": null, "health": null}}}

Staged rollouts add header fields (absent otherwise): ``stages`` (the stage plan, see
``include.patching.stages.StagePlan.as_json``), ``halt`` (``{"stage", "reason"}`` once a stage
failed its gate or the rollout was stopped between stages) and ``approval`` (the decision taken
between the first stage and the rest).

Every field is declared on ``LedgerEntry`` (typed: ``Phase``, ``MaintenanceOwnership``,
``ReleaseOutcome``, ``ServerState``); ``to_json``/``from_json`` keep this shape. An entry
written by an older version (without ``known_executions``, ``wall_seconds`` or ``observed_at``)
loads with those fields None; keys this version does not know are kept on save.

Two clocks: ``started_at``/``ended_at`` are the patching service's own times (evidence, on the
API's clock, which may run minutes or hours away from ours); ``observed_at`` is when patchflow
saw the outcome, on patchflow's clock. Compliance ("patched at", "days since") counts from
``observed_at`` (docs/compliance.md).

``attempts`` is the number of initiations the patching service listed for the execution;
``reboots`` stays null: the service does not report reboots and patchflow does not infer them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from include.artifacts import PathLike, read_json, write_bytes_atomic
from include.clc.shapes import QUEUE_FAILED, QUEUE_SUCCEEDED
from include.patching.snapshot_state import RevertStatus, SnapshotFate, SnapshotStatus
from include.patching.states import ATTEMPTED_STATES, ERROR_STATES, ServerState
from include.timefmt import utc_text, utcnow


class Phase(StrEnum):
    """Where one server is in the rollout (ledger field ``phase``)."""

    QUEUED = "queued"
    """Not sent yet (maybe already put into maintenance ahead of its wave)."""
    SUBMITTING = "submitting"
    """Recorded before the Execute Package POST: never sent again in this run (I1)."""
    SUBMITTED = "submitted"
    """The request was queued (job id known) or its execution was adopted."""
    DONE = "done"
    """Ended in a terminal ``ServerState``."""


IN_FLIGHT = frozenset({Phase.SUBMITTING, Phase.SUBMITTED})
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


def load_path(run_folder: PathLike, package_key: str) -> PathLike:
    """The ledger's digest for the sibling packages' rollouts (``Ledger.digest``)."""
    return run_folder / f"rollout_{package_key}.load.json"


def results_path(run_folder: PathLike, package_key: str) -> PathLike:
    return run_folder / f"results_{package_key}.json"


@dataclass
class LedgerEntry:
    """One server's durable rollout state (``servers.<id>`` in the ledger file)."""

    phase: Phase = Phase.QUEUED
    maintenance: MaintenanceOwnership = MaintenanceOwnership.NONE
    maintenance_released: bool = False
    maintenance_job_id: str | None = None
    """The maintenance-on job; kept whatever happens, the release waits for it (I2)."""
    maintenance_job_status: str | None = None
    """Its status when last seen (None: not seen yet or unreadable)."""
    maintenance_release: ReleaseOutcome | None = None
    maintenance_note: str = ""
    request_time: str | None = None
    """When Execute Package was (last) requested, our clock (deadline base, I7)."""
    job_id: str | None = None
    submissions: list[dict[str, Any]] = field(default_factory=list)
    """One ``{"request_time", "job_id", "result"}`` per Execute Package request."""
    known_executions: list[str] | None = None
    """Execution ids on the server right before the request, when its summary was read then."""
    not_before: str | None = None
    """Else: the patching service's time (its clock, from the ``Date`` of an answer received
    before the request) no later than which our execution starts, less ``api_clock_margin``.
    Both None only in legacy ledgers (``executions.select_execution``)."""
    execution_id: str | None = None
    state: ServerState | None = None
    reason: str = ""
    started_at: str | None = None
    """The execution's start as the patching service dated it (API clock), else our request time."""
    ended_at: str | None = None
    """The execution's end as the patching service dated it (API clock): evidence, not arithmetic."""
    observed_at: str | None = None
    """When patchflow saw the outcome, on its own clock: the trigger's observation of the
    completion, else the moment the rollout recorded the end. None for ``not_attempted``."""
    patches: list[dict[str, Any]] = field(default_factory=list)
    patches_installed: int = 0
    patches_failed: int = 0
    attempts: int | None = None
    reboots: int | None = None
    wall_seconds: float | None = None
    """Seconds from our request to the trigger seeing completion (feeds the quiet period)."""
    timing: dict[str, Any] | None = None
    """What the completed execution teaches the read schedule (``read_schedule.ExecutionShape``:
    its initiations' API durations and its start's lag after our request); None: not seen."""
    stage: int | None = None
    """Staged rollouts: the stage (1-based) the server belongs to, fixed when the ledger is
    created (``include.patching.stages``) so a restart keeps it; None: no stages (one window)."""
    health: str | None = None
    """The post-patch health check's verdict in words (``include.patching.health``); None: not checked."""
    cluster: str | None = None
    """The server's cluster key (``include.patching.clusters``); None: in no cluster."""
    # Snapshot safety net (include.patching.snapshots); all None in older ledgers and when off.
    snapshot: SnapshotStatus | None = None
    snapshot_job_id: str | None = None
    snapshot_before: list[str] | None = None
    """Names of the snapshots the server had right before createSnapshot: a new name is ours."""
    snapshot_name: str | None = None
    """The platform's name of this run's snapshot (its creation time, API clock)."""
    snapshot_id: str | None = None
    snapshot_note: str | None = None
    """Why no snapshot of this run was taken or kept, in words."""
    snapshot_fate: SnapshotFate | None = None
    revert: RevertStatus | None = None
    revert_job_id: str | None = None
    failed_state: ServerState | None = None
    """The state a reverted server had before the revert (``failed`` or ``timed_out``)."""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    """Keys this version does not know (a newer or older writer): kept on save, never read."""

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name != "_encoded":  # a field changed: encode the entry again at the next save
            self.__dict__.pop("_encoded", None)

    def encoded(self) -> str:
        """This entry as compact JSON for ``Ledger.save``, encoded again only if a field was
        assigned since the last save — or while it is in flight, where the rollout updates its
        last submission in place. At 10,000 servers a save then encodes the few hundred entries
        that changed, not all of them."""
        cached = self.__dict__.get("_encoded")
        if cached is None or self.phase in IN_FLIGHT:
            cached = json.dumps(self.to_json(), separators=(",", ":"), default=str)
            object.__setattr__(self, "_encoded", cached)
        return cached

    @classmethod
    def new(cls, *, preexisting_maintenance: bool = False) -> LedgerEntry:
        ownership = MaintenanceOwnership.PREEXISTING if preexisting_maintenance else MaintenanceOwnership.NONE
        return cls(maintenance=ownership)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _ENTRY_FIELDS:
            value = getattr(self, name)
            out[name] = value.value if isinstance(value, StrEnum) else value
        return (out | self.extra) if self.extra else out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LedgerEntry:
        known = _ENTRY_FIELD_SET
        values = {k: v for k, v in data.items() if k in known}
        entry = cls(**values, extra={k: v for k, v in data.items() if k not in known})
        entry.phase = Phase(entry.phase)
        entry.maintenance = MaintenanceOwnership(entry.maintenance or MaintenanceOwnership.NONE)
        if entry.maintenance_release is not None:
            entry.maintenance_release = ReleaseOutcome(entry.maintenance_release)
        if entry.state is not None:
            entry.state = ServerState(entry.state)
        entry._snapshot_types()
        return entry

    def _snapshot_types(self) -> None:
        """The snapshot fields as their enums (JSON holds plain strings)."""
        if self.snapshot is not None:
            self.snapshot = SnapshotStatus(self.snapshot)
        if self.snapshot_fate is not None:
            self.snapshot_fate = SnapshotFate(self.snapshot_fate)
        if self.revert is not None:
            self.revert = RevertStatus(self.revert)
        if self.failed_state is not None:
            self.failed_state = ServerState(self.failed_state)

    def end(self, state: ServerState, reason: str, now: str) -> None:
        """Mark the server done; an attempted server gets an end and an observation time if it
        has none (``now`` is our clock)."""
        self.phase, self.state, self.reason = Phase.DONE, state, reason
        if state not in ATTEMPTED_STATES:  # never sent the package: nothing observed
            return
        self.ended_at = self.ended_at or now
        self.observed_at = self.observed_at or now

    @property
    def run_owned_maintenance(self) -> bool:
        """This run may have switched maintenance on: the release must check it live."""
        return self.maintenance in RUN_OWNED_MAINTENANCE


_ENTRY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(LedgerEntry) if f.name != "extra")
"""The declared fields but ``extra``, once: ``fields()`` per entry costs seconds at 10,000 servers."""
_ENTRY_FIELD_SET = frozenset(_ENTRY_FIELDS)


class Ledger:
    """In-memory view of the ledger file; ``save()`` persists it atomically.

    ``data`` holds the file's header fields (package, alias, order, waves …); the per-server
    entries live typed in ``servers`` and are written back by ``save()``.
    """

    def __init__(self, path: PathLike, data: dict[str, Any]) -> None:
        self.path = path
        #: where ``save`` also writes ``digest()`` for sibling rollouts (``load_path``); None: nowhere
        self.digest_path: PathLike | None = None
        self._written: tuple[str, str] | None = None  # what the last save wrote (``updated_at`` aside)
        self.data = {k: v for k, v in data.items() if k != "servers"}
        self.servers: dict[str, LedgerEntry] = {
            sid: LedgerEntry.from_json(raw) for sid, raw in (data.get("servers") or {}).items()
        }

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
        header: Mapping[str, Any] | None = None,
        entry_fields: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Ledger:
        """Load the ledger, or create it from ``(server_id, in_maintenance_at_inventory)`` pairs.

        ``header`` and ``entry_fields`` (per server id) are written with the first save, so a
        staged rollout's plan is in the ledger from its first byte on (a restart keeps it).
        """
        if path.exists():
            ledger = cls.load(path)
            if ledger.data.get("package_key") != package_key:
                raise ValueError(f"ledger {path} belongs to package {ledger.data.get('package_key')!r}")
            return ledger
        now = utc_text(utcnow())
        data = {
            "version": 1,
            "package_key": package_key,
            "package_id": package_id,
            "alias": alias,
            "created_at": now,
            "updated_at": now,
            "waves": 0,
            "order": [sid for sid, _ in targets],
            "servers": {
                sid: LedgerEntry.new(preexisting_maintenance=pre).to_json()
                | dict((entry_fields or {}).get(sid) or {})
                for sid, pre in targets
            },
        } | dict(header or {})
        ledger = cls(path, data)
        ledger.save()
        return ledger

    def to_json(self) -> dict[str, Any]:
        return self.data | {"servers": {sid: e.to_json() for sid, e in self.servers.items()}}

    def digest(self) -> dict[str, Any]:
        """What the sibling packages' rollouts need of this ledger (``fleet_budget.PackageLoad``),
        a few hundred bytes where the ledger is megabytes at fleet scale."""
        flying = [e for e in self.servers.values() if e.phase in IN_FLIGHT]
        durations = [e.wall_seconds for e in self.servers.values() if e.wall_seconds and e.wall_seconds > 0]
        return {
            "in_flight": len(flying),
            "queued": sum(1 for e in self.servers.values() if e.phase is Phase.QUEUED),
            "errors": sum(1 for e in self.servers.values() if e.state in ERROR_STATES),
            "duration_sum": float(sum(durations)),
            "durations": len(durations),
            "in_flight_since": [e.request_time for e in flying if e.request_time],
        }

    def save(self) -> None:
        """Write the whole file atomically: the same JSON as ``to_json``, compact (rewritten before
        and after every side effect, so its cost is per wave x size), each entry as last encoded
        unless it changed (``LedgerEntry.encoded``). With a ``digest_path`` (fleet-wide limits),
        the digest goes there first: a reader between the two writes sees the new counts, never
        older ones (a sibling must not start servers into slots this save just took). Nothing
        changed since the last save (``updated_at`` aside): nothing is written."""
        body = ",".join(f"{json.dumps(sid)}:{entry.encoded()}" for sid, entry in self.servers.items())
        state = (json.dumps({k: v for k, v in self.data.items() if k != "updated_at"}, default=str), body)
        if state == self._written:
            return
        if self.digest_path is not None:
            write_bytes_atomic(self.digest_path, json.dumps(self.digest(), separators=(",", ":")).encode())
        self.data["updated_at"] = utc_text(utcnow())
        head = json.dumps(self.data, separators=(",", ":"), default=str)[:-1]
        payload = f'{head}{"," if len(head) > 1 else ""}"servers":{{{body}}}}}'
        write_bytes_atomic(self.path, payload.encode("utf-8"))
        self._written = state

    @property
    def alias(self) -> str:
        return self.data["alias"]

    def next_wave(self) -> int:
        """Count one more wave (the log numbers them)."""
        self.data["waves"] += 1
        return self.data["waves"]

    def ordered(self) -> list[tuple[str, LedgerEntry]]:
        return [(sid, self.servers[sid]) for sid in self.data["order"]]

    def in_phase(self, *phases: Phase) -> list[str]:
        return [sid for sid, e in self.ordered() if e.phase in phases]

    def run_owned_maintenance(self) -> list[str]:
        """Servers this run may have put into maintenance, in plan order."""
        return [sid for sid, e in self.ordered() if e.run_owned_maintenance]

    def preexisting_maintenance(self) -> list[str]:
        """Servers in maintenance before the run (inventory): never switched off by it."""
        return [sid for sid, e in self.ordered() if e.maintenance is MaintenanceOwnership.PREEXISTING]
