"""One in-memory fake of the CLC client protocol the rollout and the release use.

``include.patching.rollout.ClcApi`` (what ``Rollout`` takes) plus ``get_server`` from
``include.patching.maintenance.MaintenanceApi`` (what ``MaintenanceRelease`` takes). Nothing is
timed; the test says when things happen:

* Maintenance: each server's flag; start/stop answers are queued jobs that change the flag when
  they land. A job lands when waited for, unless ``slow_waits`` says how many waits it outlives
  first (a job slower than the caller's timeout); ``land_all()`` is "time passes".
* Executions: an accepted Execute Package creates one pending execution per server, dated on the
  API's own clock (ours + ``api_offset``) and kept hidden from the summary until
  ``start_queued()`` — the platform's queue, which may start a batch long after the request.
  ``complete_all()`` completes every pending execution; ``patches`` sets a server's detail.
* Snapshots: each server's list (``snapshots``: name → id), storage (``storage_gb``) and power
  state; createSnapshot, restore and delete are queued jobs that act when they land (restore:
  the server is recorded in ``restored``). ``failing_snapshots`` / ``failing_restores`` end
  those jobs ``failed``; ``hanging_restores`` never land.
* Faults are constructor options (refusals, failing or slow jobs, a lost startMaintenance answer
  that the hook's retry answers "already in maintenance"); ``answer`` decides what the caller
  gets back from Execute Package.

``calls`` records ``(operation, server ids)`` with the CLC operation names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import count
from typing import Any

from include.clc.client import ApiClock
from include.clc.errors import ClcApiError, ClcConnectionError, PossiblySubmittedError
from include.clc.shapes import BatchItem
from include.patching.packages import LINUX_YUM
from include.patching.rollout import Rollout, RolloutConfig
from include.patching.rollout_state import Ledger, ledger_path
from include.patching.snapshots import SnapshotPolicy
from include.patching.watch import ObservedExecution, Outcome, WatchState
from include.timefmt import utc_text

#: The platform's answer when a server already is in the requested state (reference §6.1, sic).
ALREADY = "The server already in desired state."
CANNOT_QUEUE = (
    "The operation cannot be queued because the server cannot be found or it is not in a valid state."
)
EXECUTE = "POST /v2/operations/DEMO/servers/executePackage"
START, STOP, EXECUTE_PACKAGE = "startMaintenance", "stopMaintenance", "executePackage"
CREATE_SNAPSHOT, RESTORE_SNAPSHOT, DELETE_SNAPSHOT = "createSnapshot", "restoreSnapshot", "deleteSnapshot"
PATCH_SUMMARY = "patchSummary"
CANNOT_QUEUE = (
    "The operation cannot be queued because the server cannot be found or it is not in a valid state."
)


class Answer(StrEnum):
    """What the caller of Execute Package gets back."""

    OK = "ok"
    LOST = "lost"  # processed, then the connection dropped
    UNSENT_BUT_AMBIGUOUS = "unsent"  # dropped before processing: the client cannot tell
    NEVER_LEFT = "never_left"  # connection refused: provably not sent
    MISSING = "missing"  # processed, the answer omits every server


@dataclass
class Job:
    servers: list[str]
    maintenance: bool | None
    """The flag the job sets when it lands; None for Execute Package."""
    waits_left: int = 0
    """Waits that time out (status ``executing``) before the job lands."""
    fail: bool = False
    status: str = "executing"
    lands: Callable[[], None] | None = field(default=None, repr=False)
    """What a snapshot job does when it lands successfully."""
    hangs: bool = False


class MemoryApi:
    def __init__(
        self,
        servers: Iterable[str] | Mapping[str, bool],
        *,
        api_offset: timedelta = timedelta(0),
        api_speed: float = 1.0,
        api_origin: datetime | None = None,
        lose_start_answer: bool = False,
        already_answer: str | None = None,
        slow_waits: int = 0,
        slow_servers: set[str] | None = None,
        failing_start_jobs: Iterable[str] = (),
        start_request_error: Iterable[str] = (),
        refuse_start: Mapping[str, str] | None = None,
        refuse_stop: Mapping[str, str] | None = None,
        storage_gb: Mapping[str, int] | None = None,
        owner_snapshots: Iterable[str] = (),
        failing_snapshots: Iterable[str] = (),
        failing_restores: Iterable[str] = (),
        hanging_restores: Iterable[str] = (),
        dated: bool = False,
    ) -> None:
        """``servers``: ids, or ``{id: in maintenance}``.

        :param api_offset, api_speed, api_origin: the API's clock is ours + ``api_offset``, or a
            clock running ``api_speed`` times faster than ours since ``api_origin`` (the simulator's).

        :param lose_start_answer: process startMaintenance, lose the answer, answer what the
            hook's retry gets (issue 8, item 1).
        :param already_answer: errorMessage of an "already in that state" answer (None: no
            message, as the 2017 API did).
        :param slow_waits: maintenance-on jobs outlive this many waits before they land ...
        :param slow_servers: ... when they include one of these servers (None: every one).
        :param failing_start_jobs: a maintenance-on job including one of these ends ``failed``.
        :param start_request_error: startMaintenance for a batch with one of these raises (HTTP
            500 after the hook's retries).
        :param dated: patch reads carry the API's clock, as the real hook's (``patching_clock``);
            without, the rollout reads each server's history before the POST.
        """
        flags = servers if isinstance(servers, Mapping) else dict.fromkeys(servers, False)
        self.servers: dict[str, bool] = dict(flags)
        self.api_offset, self.api_speed = api_offset, api_speed
        self.api_origin = api_origin or datetime.now(UTC)
        self.lose_start_answer = lose_start_answer
        self.already_answer = already_answer
        self.slow_waits, self.slow_servers = slow_waits, slow_servers
        self.failing_start_jobs = set(failing_start_jobs)
        self.start_request_error = set(start_request_error)
        self.refuse_start = dict(refuse_start or {})
        self.refuse_stop = dict(refuse_stop or {})
        self.answer = Answer.OK
        self.jobs: dict[str, Job] = {}
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.executed: list[str] = []
        self.history: dict[str, list[dict]] = {sid: [] for sid in self.servers}
        self.hidden: list[tuple[str, dict]] = []
        self.patches: dict[str, list[dict]] = {}
        self._job_ids = count(81000)
        self._execution_ids = count(100_001)
        self.storage_gb = dict(storage_gb or {})
        self.snapshots: dict[str, dict[str, str]] = {sid: {} for sid in self.servers}
        for sid in owner_snapshots:
            self.snapshots[sid]["2026-11-20.08:00:00"] = "1"
        self.power: dict[str, str] = dict.fromkeys(self.servers, "started")
        self.failing_snapshots = set(failing_snapshots)
        self.failing_restores = set(failing_restores)
        self.hanging_restores = set(hanging_restores)
        self.restored: list[str] = []
        self._snapshot_clock = count(1)
        self.dated = dated
        self.clock: ApiClock | None = None

    # --- test controls ------------------------------------------------------------------------

    def authenticate(self) -> None:
        """The real hook logs in here; the fake has nothing to check."""

    def in_maintenance(self, sid: str) -> bool:
        return self.servers[sid]

    def any_in_maintenance(self) -> bool:
        return any(self.servers.values())

    def land_all(self) -> None:
        """Time passes: every job still running lands."""
        for job in self.jobs.values():
            if job.status == "executing":
                self._land(job)

    def calls_of(self, op: str) -> list[tuple[str, ...]]:
        return [ids for name, ids in self.calls if name == op]

    def executes(self, sid: str) -> int:
        """Execute Package requests that named the server."""
        return sum(1 for ids in self.calls_of(EXECUTE_PACKAGE) if sid in ids)

    def api_now(self) -> datetime:
        elapsed = datetime.now(UTC) - self.api_origin
        return self.api_origin + elapsed * self.api_speed + self.api_offset

    def add_execution(self, sid: str, *, status: str = "completed", start: datetime | None = None) -> str:
        """Someone else's execution on the server, visible at once; returns its id."""
        execution = self._execution(sid, status, start or self.api_now())
        self.history[sid].append(execution)
        return str(execution["execution_id"])

    def start_queued(self) -> None:
        """The platform's queue starts every execution it accepted."""
        for sid, execution in self.hidden:
            self.history[sid].append(execution)
        self.hidden.clear()

    def complete_all(self, initiations: int = 2) -> None:
        for executions in self.history.values():
            for execution in executions:
                if execution["status"] == "pending":
                    execution["status"] = "completed"
                    execution["end_time"] = utc_text(self.api_now())
                    execution["init_messages"] = [
                        {"init_end_message": "Installed 1 updates: x"} for _ in range(initiations - 1)
                    ] + [{"init_end_message": "Installed 0 updates"}]

    def executions_run(self, sid: str) -> int:
        """Executions this fake created for the server's Execute Package requests."""
        queued = [e for s, e in self.hidden if s == sid]
        return sum(1 for e in self.history[sid] + queued if e.get("_ours"))

    # --- the protocol --------------------------------------------------------------------------

    def start_maintenance(self, alias: str, ids: list[str]) -> list[BatchItem]:
        self.calls.append((START, tuple(ids)))
        if self.start_request_error & set(ids):
            raise ClcApiError("POST", f"/v2/operations/{alias}/servers/{START}", 500, "internal error")
        slow = self.slow_servers is None or bool(self.slow_servers & set(ids))
        failing = bool(self.failing_start_jobs & set(ids))
        first = self._maintenance_op(ids, True, self.refuse_start, self.slow_waits if slow else 0, failing)
        if not self.lose_start_answer:
            return first
        self.land_all()  # the first request was processed; its answer never arrived
        self.calls.append((START, tuple(ids)))  # the hook's retry
        return self._maintenance_op(ids, True, self.refuse_start, 0, False)

    def stop_maintenance(self, alias: str, ids: list[str]) -> list[BatchItem]:
        self.calls.append((STOP, tuple(ids)))
        return self._maintenance_op(ids, False, self.refuse_stop, 0, False)

    def execute_package(
        self, alias: str, ids: list[str], package_id: str, parameters: dict[str, str]
    ) -> list[BatchItem]:
        self.calls.append((EXECUTE_PACKAGE, tuple(ids)))
        if self.answer is Answer.NEVER_LEFT:
            raise ClcConnectionError("POST", EXECUTE, "ConnectionRefused after 5 attempts")
        if self.answer is Answer.UNSENT_BUT_AMBIGUOUS:
            raise PossiblySubmittedError("POST", EXECUTE, "ConnectionError")
        # the platform refuses a package while one is pending on the server (as the simulator)
        busy = [sid for sid in ids if any(e["status"] == "pending" for e in self.history[sid])]
        taken = [sid for sid in ids if sid not in busy]
        self.executed += taken
        job_id = self._new_job(Job(taken, None))
        for sid in taken:
            self.hidden.append((sid, self._execution(sid, "pending", self.api_now(), ours=True)))
        if self.answer is Answer.LOST:
            raise PossiblySubmittedError("POST", EXECUTE, "ConnectionError")
        if self.answer is Answer.MISSING:
            return []
        return [BatchItem(sid, True, job_id, None) for sid in taken] + [
            BatchItem(sid, False, None, CANNOT_QUEUE) for sid in busy
        ]

    def create_snapshot(self, alias: str, ids: list[str], expiration_days: int) -> list[BatchItem]:
        self.calls.append((CREATE_SNAPSHOT, tuple(ids)))
        answer, accepted = [], []
        for sid in ids:
            if self.storage_gb.get(sid, 100) > 1024:
                answer.append(BatchItem(sid, False, None, "Snapshots are not supported over 1 TB."))
            elif self.snapshots[sid]:
                answer.append(BatchItem(sid, False, None, "Server already has a snapshot."))
            else:
                accepted.append(sid)
        if accepted:
            fail = bool(self.failing_snapshots & set(accepted))
            job_id = self._new_job(Job(accepted, None, fail=fail, lands=lambda: self._take(accepted)))
            answer += [BatchItem(sid, True, job_id, None) for sid in accepted]
        return answer

    def restore_snapshot(self, alias: str, server_id: str, snapshot_id: str) -> str:
        self.calls.append((RESTORE_SNAPSHOT, (server_id,)))
        self._snapshot_named(server_id, snapshot_id)
        self.power[server_id] = "stopped"

        def lands() -> None:
            self.restored.append(server_id)
            self.power[server_id] = "started"

        job = Job([server_id], None, fail=server_id in self.failing_restores, lands=lands)
        job.hangs = server_id in self.hanging_restores
        return self._new_job(job)

    def delete_snapshot(self, alias: str, server_id: str, snapshot_id: str) -> str:
        self.calls.append((DELETE_SNAPSHOT, (server_id,)))
        name = self._snapshot_named(server_id, snapshot_id)
        return self._new_job(Job([server_id], None, lands=lambda: self.snapshots[server_id].pop(name, None)))

    def wait_for_job(self, alias: str, job_id: str, *, timeout: float = 300.0, interval: float = 2.0) -> str:
        job = self.jobs[job_id]
        if job.status == "executing" and not job.hangs:
            if job.waits_left > 0:
                job.waits_left -= 1
            else:
                self._land(job)
        return job.status

    def get_server(self, alias: str, server_id: str) -> dict:
        if server_id not in self.servers:
            raise ClcApiError("GET", f"/v2/servers/{alias}/{server_id}", 404, "not found")
        snapshots = [
            {
                "name": name,
                "links": [{"rel": "self", "href": f"/v2/servers/{alias}/{server_id}/snapshots/{sid}"}],
            }
            for name, sid in self.snapshots[server_id].items()
        ]
        details = {
            "inMaintenanceMode": self.servers[server_id],
            "storageGB": self.storage_gb.get(server_id, 100),
            "powerState": self.power[server_id],
            "snapshots": snapshots,
        }
        return {"id": server_id, "details": details}

    def patching_clock(self) -> ApiClock | None:
        return self.clock

    def get_patch_summary(self, alias: str, server_id: str) -> list[dict]:
        self.calls.append((PATCH_SUMMARY, (server_id,)))
        if self.dated:
            self.clock = ApiClock(self.api_now(), datetime.now(UTC))
        return [{k: v for k, v in e.items() if not k.startswith("_")} for e in self.history[server_id]]

    def get_patch_detail(self, alias: str, server_id: str, execution_id: str) -> dict:
        patches = self.patches.get(server_id, [patch_attempt("bash-4.1.2-33.el6_7.1.x86_64", "completed", 0)])
        return {"execution_id": execution_id, "status": "completed", "patches": patches}

    # --- internals -----------------------------------------------------------------------------

    def _new_job(self, job: Job) -> str:
        job_id = f"va1-{next(self._job_ids)}"
        self.jobs[job_id] = job
        return job_id

    def _take(self, ids: list[str]) -> None:
        for sid in ids:
            self.snapshots[sid][f"2026-12-01.10:00:{next(self._snapshot_clock):02d}"] = "2"

    def _snapshot_named(self, server_id: str, snapshot_id: str) -> str:
        for name, sid in self.snapshots[server_id].items():
            if sid == snapshot_id:
                return name
        raise ClcApiError("POST", f"/v2/servers/DEMO/{server_id}/snapshots/{snapshot_id}", 404, "not found")

    def _land(self, job: Job) -> None:
        if job.hangs:
            return
        if job.lands is not None and not job.fail:
            job.lands()
        job.status = "failed" if job.fail else "succeeded"
        if job.maintenance is not None and not job.fail:
            for sid in job.servers:
                self.servers[sid] = job.maintenance

    def _maintenance_op(
        self, ids: list[str], value: bool, refuse: Mapping[str, str], waits: int, fail: bool
    ) -> list[BatchItem]:
        answer, accepted = [], []
        for sid in ids:
            if sid in refuse:
                answer.append(BatchItem(sid, False, None, refuse[sid]))
            elif self.servers[sid] == value:
                answer.append(BatchItem(sid, False, None, self.already_answer))
            else:
                accepted.append(sid)
        if accepted:
            job_id = self._new_job(Job(accepted, value, waits_left=waits, fail=fail))
            answer += [BatchItem(sid, True, job_id, None) for sid in accepted]
        return answer

    def _execution(self, sid: str, status: str, start: datetime, *, ours: bool = False) -> dict[str, Any]:
        return {
            "execution_id": f"VA1-{next(self._execution_ids)}",
            "status": status,
            "start_time": utc_text(start),
            "end_time": utc_text(start) if status == "completed" else "",
            "init_messages": [],
            "_ours": ours,
        }


def patch_attempt(name: str, status: str, minute: int) -> dict:
    """One row of a detail's ``patches``: one attempt of one patch."""
    code = {"completed": "2", "failed": "4"}[status]
    start = f"2016-03-14T02:{minute:02d}:00Z"
    return {"patch_begin_message": name, "patch_end_message": code, "status": status, "start_time": start}


# --- driving a Rollout against it -------------------------------------------------------------

TIMEOUT = 5.0
"""``maintenance_timeout`` of the rollouts built here (the fake never sleeps)."""


def make_rollout(
    tmp_path: Any,
    api: MemoryApi,
    *,
    servers: list[str] | None = None,
    preexisting: tuple[str, ...] = (),
    max_concurrency: int = 10,
    max_errors: int = 0,
    server_timeout: float = 60,
    snapshots: SnapshotPolicy | None = None,
) -> Rollout:
    """A rollout of the Linux package over ``servers`` (default: all of the fake's), in order."""
    targets = [(sid, sid in preexisting) for sid in servers or list(api.servers)]
    ledger = Ledger.open(
        ledger_path(tmp_path, LINUX_YUM.key),
        package_key=LINUX_YUM.key,
        package_id=LINUX_YUM.package_id,
        alias="DEMO",
        targets=targets,
    )
    config = RolloutConfig(
        package=LINUX_YUM,
        alias="DEMO",
        max_concurrency=max_concurrency,
        max_errors=max_errors,
        server_timeout=server_timeout,
        maintenance_timeout=TIMEOUT,
        job_poll_interval=0.01,
        snapshots=snapshots or SnapshotPolicy(),
    )
    return Rollout(api, ledger, config)


def report(state: WatchState, reason: str = "", execution: dict | None = None) -> dict:
    """An outcome as the trigger sends it."""
    return Outcome(
        state=state,
        reason=reason,
        job_id=None,
        job_status=None,
        execution_id=execution["execution_id"] if execution else None,
        observed_at=utc_text(datetime.now(UTC)),
        execution=ObservedExecution.from_summary(execution) if execution else None,
    ).as_dict()


def ours(api: MemoryApi, sid: str) -> dict:
    """The execution the fake created for this run's request on the server (as the summary lists it)."""
    (execution,) = [e for e in api.history[sid] if e.get("_ours")]
    return {k: v for k, v in execution.items() if not k.startswith("_")}
