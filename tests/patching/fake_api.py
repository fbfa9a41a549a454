"""A small in-memory fake of the ``ClcApi`` protocol, for the maintenance behaviour of a rollout.

Only what maintenance needs is modelled: each server's maintenance flag, queue jobs that change
it when they land, refusals, and the answer the hook gets when it retries a startMaintenance
whose first answer was lost. Execute Package is recorded and queued; no execution ever appears.

Jobs land when waited for, unless ``slow_waits`` says how many waits they outlive first (a job
slower than the caller's timeout); ``land_all()`` is "time passes": every job lands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from include.patching.api_shapes import BatchItem
from include.patching.clc_errors import ClcApiError

#: The platform's answer when a server already is in the requested state (reference §6.1, sic).
ALREADY = "The server already in desired state."
CANNOT_QUEUE = (
    "The operation cannot be queued because the server cannot be found or it is not in a valid state."
)


@dataclass
class Job:
    servers: list[str]
    maintenance: bool | None
    """The flag the job sets when it lands; None for Execute Package."""
    waits_left: int = 0
    """Waits that time out (status ``executing``) before the job lands."""
    fail: bool = False
    status: str = "executing"


@dataclass
class FakeApi:
    servers: dict[str, bool]
    """server id -> in maintenance."""
    lose_start_answer: bool = False
    """Process startMaintenance, lose the answer, answer what the hook's retry gets (item 1)."""
    already_answer: str | None = None
    """errorMessage of an "already in that state" answer (None: no message, as 2017 API did)."""
    slow_waits: int = 0
    """Maintenance-on jobs outlive this many waits before they land (item 2)..."""
    slow_servers: set[str] | None = None
    """...when they include one of these servers (None: every maintenance-on job)."""
    failing_start_jobs: set[str] = field(default_factory=set)
    """A maintenance-on job including one of these servers ends ``failed``."""
    start_request_error: set[str] = field(default_factory=set)
    """startMaintenance for a batch with one of these servers raises (HTTP 500 after retries)."""
    refuse_start: dict[str, str] = field(default_factory=dict)
    refuse_stop: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    _ids: count = field(default_factory=lambda: count(81000))

    # --- helpers for tests -----------------------------------------------------------------

    def authenticate(self) -> None:
        """The real hook logs in here; the fake has nothing to check."""

    def in_maintenance(self, sid: str) -> bool:
        return self.servers[sid]

    def land_all(self) -> None:
        """Time passes: every job still running lands."""
        for job in self.jobs.values():
            if job.status == "executing":
                self._land(job)

    def calls_of(self, op: str) -> list[tuple[str, ...]]:
        return [ids for name, ids in self.calls if name == op]

    # --- ClcApi ------------------------------------------------------------------------------

    def start_maintenance(self, alias: str, ids: list[str]) -> list[BatchItem]:
        self.calls.append(("startMaintenance", tuple(ids)))
        if self.start_request_error & set(ids):
            raise ClcApiError(
                "POST", f"/v2/operations/{alias}/servers/startMaintenance", 500, "internal error"
            )
        slow = self.slow_servers is None or bool(self.slow_servers & set(ids))
        first = self._maintenance_op(
            ids,
            True,
            self.refuse_start,
            self.slow_waits if slow else 0,
            bool(self.failing_start_jobs & set(ids)),
        )
        if not self.lose_start_answer:
            return first
        self.land_all()  # the first request was processed; its answer never arrived
        self.calls.append(("startMaintenance", tuple(ids)))  # the hook's retry
        return self._maintenance_op(ids, True, self.refuse_start, 0, False)

    def stop_maintenance(self, alias: str, ids: list[str]) -> list[BatchItem]:
        self.calls.append(("stopMaintenance", tuple(ids)))
        return self._maintenance_op(ids, False, self.refuse_stop, 0, False)

    def execute_package(
        self, alias: str, ids: list[str], package_id: str, parameters: dict[str, str]
    ) -> list[BatchItem]:
        self.calls.append(("executePackage", tuple(ids)))
        self.executed += ids
        job_id = self._new_job(Job(list(ids), None))
        return [BatchItem(sid, True, job_id, None) for sid in ids]

    def wait_for_job(self, alias: str, job_id: str, *, timeout: float = 300.0, interval: float = 2.0) -> str:
        job = self.jobs[job_id]
        if job.status == "executing":
            if job.waits_left > 0:
                job.waits_left -= 1
            else:
                self._land(job)
        return job.status

    def get_server(self, alias: str, server_id: str) -> dict:
        if server_id not in self.servers:
            raise ClcApiError("GET", f"/v2/servers/{alias}/{server_id}", 404, "not found")
        return {"id": server_id, "details": {"inMaintenanceMode": self.servers[server_id]}}

    def get_patch_summary(self, alias: str, server_id: str) -> list[dict]:
        return []

    def get_patch_detail(self, alias: str, server_id: str, execution_id: str) -> dict:
        raise AssertionError("no execution exists in this fake")

    # --- internals ---------------------------------------------------------------------------

    def _new_job(self, job: Job) -> str:
        job_id = f"va1-{next(self._ids)}"
        self.jobs[job_id] = job
        return job_id

    def _land(self, job: Job) -> None:
        job.status = "failed" if job.fail else "succeeded"
        if job.maintenance is not None and not job.fail:
            for sid in job.servers:
                self.servers[sid] = job.maintenance

    def _maintenance_op(
        self, ids: list[str], value: bool, refuse: dict[str, str], waits: int, fail: bool
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
