"""Sliding-window rollout of one patch package under rate control (framework-free).

The operator in ``patchflow.operators.rollout`` is a thin shell around ``Rollout``:
``reconcile()`` once per (re)start, then ``fill()`` → defer → ``apply(outcomes)`` → ``fill()``
… until ``finished``, then ``finish()``.

Rate control: at most ``max_concurrency`` servers in flight; newly freed slots are filled in
plan order. Once errors (failed + timed_out) exceed ``max_errors`` nothing new is started;
the rest end ``not_attempted`` (AWS SSM semantics). With a ``FleetBudget`` (``patch_fleet``) both
limits are the run's, shared with the other packages' rollouts (``include.patching.fleet_budget``).

How a package is never executed twice on a server in one run (I1) — by construction, not by
timing:

1. Right before the Execute Package POST the ledger records what will tell the new execution
   from the server's others: the patching service's time from a recent answer of its
   (``not_before``: ours is the newest execution it dates no earlier), or, when no recent answer
   dated one, the ids the server's summary lists (``known_executions``). With it, ``phase=
   submitting`` and the request time; after the answer, ``submitted`` with the job id. All
   writes are atomic.
2. The hook never replays the POST once it may have reached the API (lost answer, timeout,
   5xx other than 503): it raises ``PossiblySubmittedError``. Such a server — like one
   missing from the answer, or one whose worker died around the POST — is never sent the
   package again in this run. It stays in flight without a job id and the trigger watches
   its summary until an execution that is new by that record appears (adopted, then
   followed to completion as usual), however late the platform starts it, or until the
   server's deadline, where it ends ``failed`` saying the answer was lost and nothing
   appeared. Only a request that provably never left (connection refused: the hook retries
   those itself) or was refused by the API ends without a possible execution.
3. On every (re)start ``reconcile()`` reads the summary of each in-flight server and adopts
   the execution new by that record. Nothing is re-POSTed for an in-flight server.
4. The API refuses a second package on a server with a pending execution (``isQueued:
   false``): the server's history, read then, ends it ``not_attempted`` naming the execution in
   the way; any other refusal ends it ``failed`` with the API's message.

Which execution is ours never depends on our clock (I8): the API's clock may be minutes or
years away from ours, and API times are compared only with each other. Timings in the results
(``started_at``, ``ended_at``) come from the API's own records; ``observed_at`` is when we saw
the outcome, on our clock (what compliance uses).

Maintenance (I2): ``maintenance: requested`` is recorded before startMaintenance is sent.
Only the inventory (read before this run ever asked) makes a server ``preexisting``, never
switched off by this run; any later "already in maintenance" answer may be the hook's retry of
a request whose answer was lost, so the server stays run-owned. A server is sent the package
only once its maintenance-on job has succeeded; otherwise (refused, job failed or still running
after ``maintenance_timeout``) it ends ``not_attempted`` and keeps its job id, which the release
waits for. Finished servers with run-owned maintenance are switched off at once unless their
maintenance-on job is still outstanding (rules: ``include.patching.maintenance``); the release task
(``MaintenanceRelease``, run by ``ReleaseMaintenanceOperator``) waits for every
outstanding job, re-checks every run-owned server live at the end and records the outcome.

Bounded time (I7): every submission has a deadline (request time + ``server_timeout``, both
on our clock) enforced by the trigger; ``time_out_in_flight`` is the backstop for a deferral
timeout. A server's maintenance is released only once it has ended — for a lost answer, at
its deadline — so it is never released while its package may still start.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from include.artifacts import PathLike, write_json
from include.clc import shapes
from include.clc.client import ApiClock
from include.clc.errors import ClcError, ClcResponseError, PossiblySubmittedError
from include.clc.shapes import QUEUE_SUCCEEDED as JOB_SUCCEEDED
from include.clc.shapes import BatchItem
from include.patching import executions
from include.patching.chaos import (
    CRASH_AFTER_START_MAINTENANCE,
    CRASH_AFTER_STOP_MAINTENANCE,
    CRASH_AFTER_SUBMIT,
    crash_point,
)
from include.patching.chunking import chunks, each
from include.patching.fleet_budget import FleetBudget
from include.patching.health import HealthResult, HealthSpec
from include.patching.maintenance import (
    may_switch_off_now,
    needs_start,
    outstanding_jobs,
    ownership_after_start,
    record_release,
    stop_answer_outcome,
    wait_for_job,
)
from include.patching.packages import PatchPackage
from include.patching.rate_control import budget_exhausted
from include.patching.read_schedule import Cadence, ExecutionShape
from include.patching.rollout_state import (
    IN_FLIGHT,
    Ledger,
    LedgerEntry,
    MaintenanceOwnership,
    Phase,
    ReleaseOutcome,
)
from include.patching.snapshots import OFF, SnapshotApi, SnapshotPhase, SnapshotPolicy
from include.patching.stages import Gate
from include.patching.states import ERROR_STATES, ServerState
from include.patching.tuning import PRODUCTION
from include.patching.watch import ObservedExecution, Outcome, ServerWatch, WatchState
from include.patching.window import NO_WINDOW, WINDOW_CLOSED, RolloutWindow, window_results
from include.timefmt import parse_iso8601, utc_text, utcnow

log = logging.getLogger(__name__)

API_CLOCK_MARGIN = timedelta(seconds=30)
"""How far the patching service's ``Date`` may run ahead of the clock it dates executions by
(one service; different hosts behind it, at worst). On the API's clock, hence not scaled."""


class ClcApi(SnapshotApi, Protocol):
    """What the rollout needs from the CLC client (``patchflow.hooks.clc.ClcHook``)."""

    def start_maintenance(self, alias: str, ids: list[str]) -> list[BatchItem]: ...
    def stop_maintenance(self, alias: str, ids: list[str]) -> list[BatchItem]: ...
    def execute_package(
        self, alias: str, ids: list[str], package_id: str, parameters: dict[str, str]
    ) -> list[BatchItem]: ...
    def wait_for_job(
        self, alias: str, job_id: str, *, timeout: float = ..., interval: float = ...
    ) -> str: ...

    def get_patch_summary(self, alias: str, server_id: str) -> list[dict]: ...
    def get_patch_detail(self, alias: str, server_id: str, execution_id: str) -> dict: ...
    def patching_clock(self) -> ApiClock | None: ...


@dataclass(frozen=True)
class RolloutConfig:
    package: PatchPackage
    alias: str
    max_concurrency: int
    max_errors: int
    server_timeout: float
    maintenance_mode: bool = True
    patch_debug_mode: bool = False
    maintenance_timeout: float = PRODUCTION.maintenance_timeout
    job_poll_interval: float = PRODUCTION.job_poll_interval
    api_clock_age: float = PRODUCTION.api_clock_age
    release_delay: float = 0.0
    """Finished servers' maintenance-off waits up to this long (seconds) to go out with others'
    in one stopMaintenance of ``release_chunk`` servers; 0: each turn's finished servers at once."""
    ahead_chunk: int | None = None
    """Servers asked into maintenance at once ahead of their slot (None: ``chunk_size``)."""
    release_chunk: int | None = None
    """Finished servers per stopMaintenance request while others still patch (None: ``chunk_size``)."""
    chunk_size: int | None = None
    """Servers per startMaintenance / Execute Package request, sent concurrently
    (``include.patching.chunking``); None: one request per wave."""
    parameters: dict[str, str] | None = None
    """The request's ``package.parameters`` as given (``ExecutePackageOperator``); None: the
    package's defaults with ``patch_debug_mode`` applied (``patch_fleet``)."""
    health: HealthSpec | None = None
    """Check each completed server's health before counting it a success (None: no check)."""
    max_per_cluster: int = 1
    """Servers of one cluster (``LedgerEntry.cluster``) in flight at once."""
    stop_after_stage: int | None = None
    """Staged rollouts: pause once this stage has ended (the approval step); None: run to the end."""
    snapshots: SnapshotPolicy = OFF
    """The snapshot safety net (``include.patching.snapshots``); off by default."""
    window: RolloutWindow = NO_WINDOW
    """The maintenance window: no server is started after ``window.last_start()`` (``may_start_more``)."""

    def package_parameters(self) -> dict[str, str]:
        if self.parameters is not None:
            return dict(self.parameters)
        return self.package.parameters(patch_debug_mode=self.patch_debug_mode)


class SubmissionResult(StrEnum):
    """What the ledger knows about one Execute Package request for one server."""

    SUBMITTING = "submitting"
    """Recorded before the POST; stays so if the worker died around it."""
    SUBMITTED = "submitted"
    """Queued by the API; the job id is known."""
    POSSIBLY_SUBMITTED = "possibly_submitted"
    """The answer was lost or did not mention the server: it may have been queued."""
    REFUSED = "refused"
    """Certainly not queued (refused, or never sent)."""


def _already_pending(execution_id: str, outcome: str) -> str:
    return f"execution {execution_id} was already pending on the server (another request); {outcome}"


def _short(ids: list[str], limit: int = 5) -> str:
    return ", ".join(ids[:limit]) + (f", … +{len(ids) - limit}" if len(ids) > limit else "")


#: completions below which the cadence is learnt again at every turn (``Rollout.cadence``)
RELEARN_BELOW = 100


class Rollout:
    def __init__(
        self,
        api: ClcApi,
        ledger: Ledger,
        config: RolloutConfig,
        *,
        now: Callable[[], datetime] = utcnow,
        logger: logging.Logger | Any = log,
        fleet: FleetBudget | None = None,
    ) -> None:
        self.api, self.ledger, self.config, self.now, self.log = api, ledger, config, now, logger
        self.gate = Gate(
            ledger, max_per_cluster=config.max_per_cluster, stop_after_stage=config.stop_after_stage
        )
        self._snapshots = SnapshotPhase(
            api,
            ledger,
            config.alias,
            config.snapshots,
            self._end,
            logger=logger,
            chunk_size=config.chunk_size,
        )
        self.fleet = fleet
        """Fleet-wide limits shared with the run's other package rollouts (None: this package's own)."""
        self._learnt: tuple[int, float, Cadence | None] | None = None  # (completions, rate, cadence)
        self._ahead_chunk = config.ahead_chunk or config.chunk_size
        """Servers per startMaintenance ahead of their slot (``_prepare_next``)."""
        if fleet is not None:  # the siblings read this package's load from its digest
            ledger.digest_path = fleet.digest_path()

    # --- views ---------------------------------------------------------------------------

    @property
    def entries(self) -> dict[str, LedgerEntry]:
        return self.ledger.servers

    def in_flight_ids(self) -> list[str]:
        return self.ledger.in_phase(*IN_FLIGHT)

    def errors(self) -> int:
        return sum(1 for e in self.entries.values() if e.state in ERROR_STATES)

    def budget_errors(self) -> int:
        """The errors counted against ``max_errors``: the fleet's with a fleet budget."""
        return self.errors() if self.fleet is None else self.fleet.errors(self.ledger)

    def budget_exhausted(self) -> bool:
        if self.fleet is not None:  # fleet-wide error budget (include.patching.fleet_budget)
            return self.fleet.exhausted(self.ledger)
        return budget_exhausted(self.errors(), self.config.max_errors)

    def may_start_more(self) -> bool:
        """False once the maintenance window is closing (less than its cutoff left): start nothing new."""
        return self.config.window.may_start(self.now())

    @property
    def finished(self) -> bool:
        if self.in_flight_ids():
            return False
        stopped = self.gate.halt() is not None or self.gate.paused()  # stages (include.patching.stages)
        return (
            stopped
            or self.budget_exhausted()
            or not self.may_start_more()
            or not self.ledger.in_phase(Phase.QUEUED)
        )

    def watch_list(self, cadence: Cadence | None = None) -> list[dict[str, Any]]:
        """Trigger input (``ServerWatch.as_dict()``) for every in-flight server; with the
        rollout's ``cadence`` (learnt once per turn by the caller), no read before the earliest
        completion, else the quiet period."""
        quiet = self.quiet_period() if cadence is None else cadence.earliest_completion()
        return [self._watch(sid, quiet).as_dict() for sid in self.in_flight_ids()]

    def cadence(self, rate: float = 1.0) -> Cadence | None:
        """How this package's executions run, learnt from those that completed in this run
        (``include.patching.read_schedule``); None until enough have. Learnt again once the
        completions grew by a tenth (every time while fewer than ``RELEARN_BELOW``): at 10,000
        servers, learning every refill from every completion cost the worker's loop its pace."""
        timed = [e.timing for e in self.entries.values() if e.timing]
        learnt = self._learnt
        if learnt is not None and learnt[1] == rate and RELEARN_BELOW <= len(timed) < learnt[0] * 1.1:
            return learnt[2]
        cadence = Cadence.learn([ExecutionShape.from_dict(t) for t in timed], rate=rate)
        self._learnt = (len(timed), rate, cadence)
        return cadence

    def _watch(self, sid: str, quiet: float) -> ServerWatch:
        e = self.entries[sid]
        known = e.known_executions  # None with ``not_before``, or in legacy ledgers
        return ServerWatch(
            server_id=sid,
            job_id=e.job_id,
            requested_at=str(e.request_time),
            deadline=self.deadline(sid).isoformat(),
            known_executions=None if known is None else tuple(known),
            not_before=e.not_before,
            quiet_seconds=quiet,
            execution_id=e.execution_id,
            health=self.config.health.as_dict() if self.config.health else None,
            job_succeeded=bool(
                e.job_id and e.submissions and e.submissions[-1].get("job_status") == JOB_SUCCEEDED
            ),
            polled_at=e.submissions[-1].get("polled_at") if e.submissions else None,
            next_read_at=e.submissions[-1].get("next_read_at") if e.submissions else None,
            seen=e.submissions[-1].get("seen") if e.submissions else None,
        )

    def deadline(self, sid: str) -> datetime:
        """Request time + ``server_timeout``, both on our clock (I7)."""
        requested = parse_iso8601(self.entries[sid].request_time)
        if requested is None:
            raise ValueError(f"{sid}: in flight without a request time")
        return requested + timedelta(seconds=self.config.server_timeout)

    def quiet_period(self) -> float:
        """Seconds after a request during which polling is pointless, learnt from this rollout.

        Servers of one package in one run take similar times. Once a few have completed, the
        quickest of them (10th percentile, so one outlier does not count) tells how long any
        server needs at least; the trigger does not poll a server before that. Cuts the API
        requests per server without delaying the detection of a completion.
        """
        seen = sorted(e.wall_seconds for e in self.entries.values() if e.wall_seconds is not None)
        if len(seen) < 5:
            return 0.0
        return seen[len(seen) // 10] * 0.9

    def latest_deadline(self) -> datetime | None:
        deadlines = [self.deadline(sid) for sid in self.in_flight_ids()]
        return max(deadlines) if deadlines else None

    def progress(self) -> str:
        total = len(self.entries)
        done = len(self.ledger.in_phase(Phase.DONE))
        return (
            f"in flight {len(self.in_flight_ids())}; done {done}/{total}; "
            f"errors {self.budget_errors()}/{self.config.max_errors}"
            + (" (all packages)" if self.fleet is not None else "")
        )

    # --- reconcile -----------------------------------------------------------------------

    def reconcile(self) -> None:
        """Adopt executions of servers a previous attempt may have submitted; never re-POST."""
        self._snapshots.reconcile()  # reverts/deletes a dead attempt left half done
        adopted, watching = [], []
        for sid in self.in_flight_ids():
            e = self.entries[sid]
            try:
                summary = self.api.get_patch_summary(self.config.alias, sid)
            except ClcError as exc:
                self.log.warning("reconcile %s: summary unreadable (%s); trigger keeps looking", sid, exc)
                watching.append(sid)
                continue
            execution = self._identify(sid, summary)
            if execution is not None:
                e.execution_id = execution["execution_id"]
                e.phase = Phase.SUBMITTED
                adopted.append(sid)
            else:
                watching.append(sid)
        if adopted or watching:
            self.ledger.save()
            self.log.info(
                "reconciled after restart: adopted executions of %d server(s) (%s); still watching %d (%s)",
                len(adopted),
                _short(adopted),
                len(watching),
                _short(watching),
            )

    def _identify(self, sid: str, summary: list[dict]) -> dict | None:
        """The execution this run's request created on ``sid`` (see ``select_execution``)."""
        e = self.entries[sid]
        if e.execution_id:
            return next((x for x in summary if x["execution_id"] == e.execution_id), None)
        return executions.select_execution(
            summary, e.known_executions, parse_iso8601(e.request_time), parse_iso8601(e.not_before)
        )

    # --- starting servers ----------------------------------------------------------------

    def fill(self) -> list[str]:
        """Start servers until the window is full, the queue is empty or the budget is gone."""
        started: list[str] = []
        self._check_gate()
        while not self.budget_exhausted() and self.may_start_more():
            slots = self._free_slots()
            queued = self.ledger.in_phase(Phase.QUEUED)
            batch = self.gate.admit(queued, self.in_flight_ids(), slots)  # stage, halt, cluster limits
            if not batch:
                break
            wave = self.ledger.next_wave()
            ready = self._maintenance_on(batch) if self.config.maintenance_mode else batch
            ready = self._snapshots.take(ready)  # snapshot safety net (include.patching.snapshots)
            ready = self._snapshot_executions(ready)  # right before the POST (I1)
            if ready:
                self._submit(ready)
            submitted = [s for s in ready if self.entries[s].phase in IN_FLIGHT]
            self._snapshots.settle([s for s in batch if self.entries[s].phase is Phase.DONE])
            self.release([s for s in batch if self.entries[s].phase is Phase.DONE])
            started += submitted
            self._prepare_next(batch)
            self.log.info(
                "wave %d: started %d server(s) (%s); %s",
                wave,
                len(submitted),
                _short(submitted),
                self.progress(),
            )
            if self._still_queued(batch):  # held back by the fleet-wide limit: wait for a slot
                break
        return started

    def _free_slots(self) -> int:
        """Servers that may start now: this package's window, or its share of the fleet's."""
        if self.fleet is not None:
            return self.fleet.slots(self.ledger)
        return self.config.max_concurrency - len(self.in_flight_ids())

    def _admit(self, batch: list[str]) -> list[str]:
        """Mark the servers that may start ``submitting`` (durable, I1); the fleet-wide limit
        decides under its lock, so a sibling rollout filling at the same moment counts them."""
        if self.fleet is None:
            self._mark_submitting(batch)
            return batch
        return self.fleet.admit(self.ledger, batch, self._mark_submitting)

    def _end(self, sid: str, state: ServerState, reason: str = "") -> None:
        self.entries[sid].end(state, reason, utc_text(self.now()))

    def _snapshot_executions(self, batch: list[str]) -> list[str]:
        """Record what will tell each server's new execution from its others; return the servers
        still startable. Only queued servers — nothing can have been sent to them yet — so the
        record is made afresh every time and the last one before the POST is kept.

        With the patching service's clock seen within ``api_clock_age`` (any server's read:
        ``ApiClock``), nothing is read. Ours will be the newest execution the service dates at
        or after that time, less ``API_CLOCK_MARGIN`` (``not_before``): started after our
        request, it cannot be dated earlier on the same clock (I1/I4/I8; our clock is never
        compared with the API's). Otherwise the first server's summary is read, which also
        dates the clock for the others; only if the service sends no ``Date`` is every
        server's read, and ours is then the newest execution not listed (``known_executions``).

        A server read here with an execution already pending (someone else's run) is left
        alone; for the others the API refuses a package while one is pending (point 4 above).
        """
        queued = [sid for sid in batch if self.entries[sid].phase is Phase.QUEUED]
        fresh = self._api_clock()
        read = [] if fresh is not None else queued[:1]
        ready = self._record_known(read)
        clock = fresh or self._api_clock()
        if clock is None:
            ready += self._record_known(queued[len(read) :])
        else:
            not_before = utc_text(clock.api - API_CLOCK_MARGIN)
            for sid in queued[len(read) :]:
                self.entries[sid].known_executions = None
                self.entries[sid].not_before = not_before
                ready.append(sid)
        self.ledger.save()
        return ready

    def _api_clock(self) -> ApiClock | None:
        """The patching service's clock as a recent answer showed it; None if too old or unknown."""
        clock = self.api.patching_clock()
        if clock is None or (self.now() - clock.seen).total_seconds() > self.config.api_clock_age:
            return None
        return clock

    def _record_known(self, queued: list[str]) -> list[str]:
        """Read each server's summary and record the execution ids it lists (concurrently)."""
        ready = []
        summaries = each(lambda sid: self.api.get_patch_summary(self.config.alias, sid), queued)
        for sid, summary in zip(queued, summaries, strict=True):
            e = self.entries[sid]
            if isinstance(summary, ClcError):
                self._end(
                    sid,
                    ServerState.NOT_ATTEMPTED,  # nothing sent: not an error of the budget (SSM semantics)
                    f"patch history unreadable before patching, so the package was not sent: {summary}",
                )
                continue
            pending = executions.pending_ids(summary)
            if pending:
                self._end(
                    sid, ServerState.NOT_ATTEMPTED, _already_pending(pending[0], "the package was not sent")
                )
                continue
            e.known_executions = [x["execution_id"] for x in summary]
            e.not_before = None
            ready.append(sid)
        return ready

    def _prepare_next(self, batch: list[str]) -> None:
        """Keep the servers that will start next in maintenance now, without waiting.

        Maintenance jobs are slow (CLC processes a batch's servers one after another): started
        ahead, they run while the current servers patch, so freed slots are refilled at once.
        The next wave confirms the job before it sends anything (``_confirm_maintenance``).

        Refills mostly start one server at a time; asking for that one server's maintenance each
        time would cost a startMaintenance and a job poll per server. Instead at least
        ``ahead_chunk`` queued servers are kept in maintenance ahead of their slot, topped up that
        many at a time, in one request, once fewer remain (one request and one job poll for them
        all). Should a refill ever wait for such a job (slots freeing faster than one job of them
        ends), the requests ahead shrink to ``chunk_size`` servers, sent side by side.
        """
        if not self.config.maintenance_mode or self.budget_exhausted() or not self.may_start_more():
            return
        rest = [s for s in self.ledger.in_phase(Phase.QUEUED) if s not in batch]
        chunk = max(self._ahead_chunk or len(batch), 1)
        ready = sum(1 for s in rest if not needs_start(self.entries[s]))
        want = max(len(batch), chunk) if ready < chunk else 0
        if not want:
            return
        ahead = self.gate.ahead(rest, self.in_flight_ids(), ready + want)  # same stage, cluster room
        # a server whose request ahead failed is asked again at its own slot, not every turn
        asked = MaintenanceOwnership.REQUESTED
        ahead = [s for s in ahead if needs_start(self.entries[s]) and self.entries[s].maintenance != asked]
        if ahead:
            # No patch-history read here: a server with another request's execution pending is
            # found out at its slot (read then, or refused by the API and read after) and ends
            # not_attempted and released.
            self._maintenance_on(ahead, wait=False, chunk=self._ahead_chunk)

    def _confirm_maintenance(self, batch: list[str]) -> None:
        """Wait for maintenance jobs started ahead of time; drop the servers whose job did not succeed."""
        jobs = outstanding_jobs(self.entries, batch)
        began = time.monotonic()
        self._wait_for_maintenance(jobs)
        waited = time.monotonic() - began
        if jobs and waited >= self.config.job_poll_interval and self._ahead_chunk != self.config.chunk_size:
            self._ahead_chunk = self.config.chunk_size
            self.log.info(
                "a refill waited %.1f s for maintenance asked ahead: from now on %s server(s) per request",
                waited,
                self._ahead_chunk or "the wave's",
            )

    def _job_status(self, job_id: str) -> str | None:
        """The job's status after waiting at most ``maintenance_timeout``; None if unreadable."""
        return wait_for_job(
            self.api,
            self.config.alias,
            job_id,
            timeout=self.config.maintenance_timeout,
            interval=self.config.job_poll_interval,
            logger=self.log,
        )

    def _maintenance_job_failure(self, job_id: str, status: str | None) -> str:
        """The reason a server whose maintenance-on job did not succeed was not patched."""
        if status in shapes.QUEUE_FAILED:
            return f"maintenance mode could not be turned on: job {job_id} ended {status}; package not sent"
        seen = f"still {status}" if status else "status unreadable"
        return (
            f"maintenance mode not confirmed: job {job_id} {seen} after "
            f"{self.config.maintenance_timeout:g} s; package not sent (the release waits for the job)"
        )

    def _wait_for_maintenance(self, jobs: dict[str, list[str]]) -> None:
        """Record each job's status; a queued server whose job did not succeed is never sent the package.

        The job id stays in the ledger whatever happens: a job that outlives the wait may still
        switch maintenance on later, and the release must wait for it (I2).
        """
        for job_id, members in jobs.items():
            status = self._job_status(job_id)
            if status == shapes.QUEUE_SUCCEEDED:  # its other servers (ahead of their slot) need not ask again
                members = [*members, *(s for s, e in self.entries.items() if e.maintenance_job_id == job_id)]
            for sid in dict.fromkeys(members):
                e = self.entries[sid]
                e.maintenance_job_status = status
                if status != shapes.QUEUE_SUCCEEDED and e.phase is Phase.QUEUED:
                    self._end(sid, ServerState.NOT_ATTEMPTED, self._maintenance_job_failure(job_id, status))
        self.ledger.save()

    def _maintenance_on(self, batch: list[str], *, wait: bool = True, chunk: int | None = None) -> list[str]:
        """Ask for maintenance on the batch; return the servers that may be sent the package.

        ``requested`` is durable before the request; a server whose maintenance could not be
        turned on ends ``not_attempted`` (never sent, so not an error against the budget).
        """
        if wait:
            self._confirm_maintenance(batch)
        need = [s for s in batch if self.entries[s].phase is Phase.QUEUED and needs_start(self.entries[s])]
        if not need:
            return self._still_queued(batch)
        for sid in need:
            self.entries[sid].maintenance = MaintenanceOwnership.REQUESTED
        self.ledger.save()
        pieces = chunks(need, chunk or self.config.chunk_size)
        answers = each(lambda ids: self.api.start_maintenance(self.config.alias, ids), pieces)
        crash_point(CRASH_AFTER_START_MAINTENANCE)  # resilience tests only
        jobs: dict[str, list[str]] = {}
        for piece, answer in zip(pieces, answers, strict=True):
            if isinstance(answer, ClcError):
                if not wait:
                    # Asked ahead of their slot: a chunk shares one request, so one failed request
                    # must not cost the whole chunk its patch. They stay queued and ``requested``
                    # (the request may have been processed: still ours to release, I2) and are
                    # asked again, once, when their slot comes.
                    why = "maintenance ahead for %s failed (%s): asked again at their slot"
                    self.log.warning(why, _short(piece), answer)
                    continue
                for sid in piece:  # stays ``requested``: the request may have been processed
                    self._end(
                        sid,
                        ServerState.NOT_ATTEMPTED,
                        f"maintenance mode could not be turned on: {answer}; package not sent",
                    )
                continue
            items = {i.server: i for i in answer}
            for sid in piece:
                self._record_maintenance_answer(sid, items.get(sid), jobs)
        self.ledger.save()
        if wait:
            self._wait_for_maintenance(jobs)
        return self._still_queued(batch)

    def _still_queued(self, batch: list[str]) -> list[str]:
        return [s for s in batch if self.entries[s].phase is Phase.QUEUED]

    def _record_maintenance_answer(
        self, sid: str, item: BatchItem | None, jobs: dict[str, list[str]]
    ) -> None:
        """Ownership after one server's startMaintenance answer; ends it if maintenance failed."""
        e = self.entries[sid]
        if item is None:
            self._end(
                sid,
                ServerState.NOT_ATTEMPTED,
                "maintenance mode: server missing from the API answer; package not sent",
            )
            return
        e.maintenance = ownership_after_start(item)
        if item.queued:
            e.maintenance_job_id, e.maintenance_job_status = item.job_id, None
            jobs.setdefault(str(item.job_id), []).append(sid)
        elif e.maintenance is MaintenanceOwnership.REFUSED:
            self._end(
                sid, ServerState.NOT_ATTEMPTED, f"maintenance mode refused: {item.error}; package not sent"
            )

    def _submit(self, batch: list[str]) -> None:
        """Send Execute Package once for ``batch``; whatever happens, never again in this run (I1)."""
        batch = self._admit(batch)
        if not batch:
            return
        package, parameters = self.config.package, self.config.package_parameters()
        pieces = chunks(batch, self.config.chunk_size)  # all marked ``submitting`` above, before any POST
        answers = each(
            lambda ids: self.api.execute_package(self.config.alias, ids, package.package_id, parameters),
            pieces,
        )
        crash_point(CRASH_AFTER_SUBMIT)  # resilience tests only: die before recording the answer
        for piece, answer in zip(pieces, answers, strict=True):
            if isinstance(answer, ClcError):
                self._record_submit_error(piece, answer)
            else:
                self._record_answer(piece, {i.server: i for i in answer})

    def _record_submit_error(self, batch: list[str], exc: ClcError) -> None:
        """One request's error: possibly processed (never re-sent, watched) or certainly not."""
        if isinstance(exc, (PossiblySubmittedError, ClcResponseError)):
            self.log.warning(
                "execute package for %d server(s) may have been processed (%s); never re-sent: "
                "watching their patch summaries for the new executions until their deadlines",
                len(batch),
                exc,
            )
            for sid in batch:
                self.entries[sid].submissions[-1]["result"] = SubmissionResult.POSSIBLY_SUBMITTED
            self.ledger.save()
            return
        for sid in batch:  # definitely not processed (4xx, 429/503 exhausted, never sent)
            self.entries[sid].submissions[-1]["result"] = SubmissionResult.REFUSED
            self._end(sid, ServerState.FAILED, f"execute package not accepted: {exc}")
        self.ledger.save()

    def _mark_submitting(self, batch: list[str]) -> None:
        """Durable BEFORE the POST (I1): from here on these servers are never sent the package again."""
        now = utc_text(self.now())
        for sid in batch:
            e = self.entries[sid]
            e.phase, e.request_time, e.job_id = Phase.SUBMITTING, now, None
            e.started_at = e.started_at or now
            e.submissions.append({"request_time": now, "job_id": None, "result": SubmissionResult.SUBMITTING})
        self.ledger.save()

    def _record_answer(self, batch: list[str], answered: dict[str, BatchItem]) -> None:
        refused: dict[str, str] = {}
        for sid in batch:
            item, e = answered.get(sid), self.entries[sid]
            if item is None:  # missing from the answer: it may still have been queued
                e.submissions[-1]["result"] = SubmissionResult.POSSIBLY_SUBMITTED
            elif item.queued:
                e.phase, e.job_id = Phase.SUBMITTED, item.job_id
                e.submissions[-1].update(result=SubmissionResult.SUBMITTED, job_id=item.job_id)
            else:
                e.submissions[-1]["result"] = SubmissionResult.REFUSED
                refused[sid] = item.error or "not queued"
        self._end_refused(refused)
        self.ledger.save()

    def _end_refused(self, refused: dict[str, str]) -> None:
        """End the servers the API refused the package: ``not_attempted`` where another request's
        execution is pending (the API's reason, unnamed in its answer), else ``failed``."""
        summaries = each(lambda sid: self.api.get_patch_summary(self.config.alias, sid), list(refused))
        for (sid, why), summary in zip(refused.items(), summaries, strict=True):
            pending = [] if isinstance(summary, ClcError) else executions.pending_ids(summary)
            if pending:
                self._end(
                    sid,
                    ServerState.NOT_ATTEMPTED,
                    _already_pending(pending[0], "the API refused the package"),
                )
            else:
                self._end(sid, ServerState.FAILED, f"execute package refused: {why}")

    # --- outcomes ------------------------------------------------------------------------

    def note_jobs(self, jobs: dict[str, str]) -> None:
        """Remember queue jobs a trigger saw succeed (kept in the submission, saved by ``apply``),
        so the next trigger reads only the executions of their servers."""
        for sid in self.in_flight_ids():
            e = self.entries[sid]
            if e.job_id and jobs.get(e.job_id) == JOB_SUCCEEDED and e.submissions:
                e.submissions[-1]["job_status"] = JOB_SUCCEEDED

    def note_polls(
        self,
        polled: dict[str, str],
        planned: dict[str, str] | None = None,
        seen: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Remember when a trigger last read each in-flight server's execution, when it planned
        the next read and what the execution showed (``SeenExecution``; kept in the submission,
        saved by ``apply``), so the next trigger goes on from there."""
        planned, seen = planned or {}, seen or {}
        for sid in self.in_flight_ids():
            e = self.entries[sid]
            if not e.submissions:
                continue
            if isinstance(polled.get(sid), str):
                e.submissions[-1]["polled_at"] = polled[sid]
            for key, given in (("next_read_at", planned.get(sid)), ("seen", seen.get(sid))):
                if given is not None:
                    e.submissions[-1][key] = given
                else:
                    e.submissions[-1].pop(key, None)

    def apply(self, outcomes: dict[str, dict[str, Any]]) -> None:
        """Record the trigger's outcomes; read per-patch details; release maintenance of ended servers."""
        finished = []
        for sid, raw in outcomes.items():
            e = self.entries.get(sid)
            if e is None or e.phase not in IN_FLIGHT:
                continue  # stale or duplicate event
            try:
                outcome = Outcome.from_dict(raw)
            except (KeyError, ValueError):  # e.g. an event of an older trigger version
                self.log.warning("%s: unreadable outcome %r ignored; still watched", sid, raw.get("state"))
                continue
            self._record(sid, outcome)
            if e.phase is Phase.DONE:
                finished.append(sid)
        self._check_gate()
        self.ledger.save()
        self._snapshots.settle(finished)  # revert or delete before maintenance goes off
        self.release_finished()
        counts = Counter(str(self.entries[s].state) for s in finished)
        if finished:
            self.log.info("finished %d server(s): %s; %s", len(finished), dict(counts), self.progress())

    def _record(self, sid: str, out: Outcome) -> None:
        e = self.entries[sid]
        if out.state is WatchState.COMPLETED:
            self._complete(sid, out)
            self._health_verdict(sid, out)
            return
        e.execution_id = out.execution_id or e.execution_id
        if out.state is WatchState.TIMED_OUT:
            self._end(sid, ServerState.TIMED_OUT, out.reason or "timed out")
        else:  # the queue job failed, or a lost answer and no execution by the deadline
            self._end(sid, ServerState.FAILED, out.reason or out.state.value)

    def _complete(self, sid: str, out: Outcome) -> None:
        e = self.entries[sid]
        execution = out.execution
        observed, requested = parse_iso8601(out.observed_at), parse_iso8601(e.request_time)
        if observed and requested:
            e.wall_seconds = max((observed - requested).total_seconds(), 0.0)
        execution_id = execution.execution_id if execution else out.execution_id
        # Timings come from the patching service's execution record (the evidence), falling
        # back to our request time; mixing our clock with the API's would distort durations.
        # Reboots are not reported by the patching service (§9): left None, never inferred (I8).
        e.execution_id = execution_id
        e.attempts = execution.attempts if execution else None
        e.reboots = None
        e.started_at = (execution.start_time if execution else None) or e.started_at
        e.ended_at = (execution.end_time if execution else None) or out.observed_at
        # Our clock's moment of completion, kept apart from the API's: compliance counts from it.
        e.observed_at = utc_text(observed) if observed else None
        e.timing = out.timing
        if execution_id is None:  # an outcome naming no execution: there is no detail to read
            self._end_from_summary(sid, execution, "no execution id")
            return
        if out.patches is not None:  # the completion was seen in the detail itself
            self._judge(sid, executions.final_attempts(out.patches))
            return
        try:
            detail = self.api.get_patch_detail(self.config.alias, sid, str(execution_id))
        except ClcError as exc:
            self._end_from_summary(sid, execution, str(exc))
            return
        self._judge(sid, executions.final_attempts(executions.patch_rows(detail)))

    def _check_gate(self) -> None:
        """Record a halt when a stage failed its gate (``include.patching.stages.Gate``)."""
        before = self.gate.halt()
        self.gate.check(self.budget_exhausted(), self.budget_errors(), self.config.max_errors)
        if self.gate.halt() and not before:
            self.log.warning("%s", self.gate.halt_reason())
            self.ledger.save()

    def _health_verdict(self, sid: str, out: Outcome) -> None:
        """A server that patched but failed its health check ends ``unhealthy`` (``health``)."""
        e = self.entries[sid]
        if self.config.health is None:
            return
        if out.health is None:
            e.health = "not checked (the trigger reported no health verdict)"
            return
        verdict = HealthResult.from_dict(out.health)
        e.health = verdict.detail
        if not verdict.healthy and e.state in (ServerState.PATCHED, ServerState.PATCHED_NO_UPDATES):
            e.state, e.reason = ServerState.UNHEALTHY, f"patched, but unhealthy afterwards: {verdict.detail}"

    def _end_from_summary(self, sid: str, execution: ObservedExecution | None, why: str) -> None:
        """Without the per-patch detail, the summary's install count decides the state."""
        installed = execution.installed if execution else 0
        self.entries[sid].patches_installed = installed
        state = ServerState.PATCHED if installed else ServerState.PATCHED_NO_UPDATES
        self._end(sid, state, f"per-patch detail unavailable ({why}); counts from the summary")

    def _judge(self, sid: str, patches: list[dict]) -> None:
        """The server's state from each patch's *last* attempt (I8): failed only if one ended failed."""
        e = self.entries[sid]
        e.patches = patches
        e.patches_failed = sum(1 for r in patches if executions.patch_failed(r))
        e.patches_installed = sum(1 for r in patches if executions.patch_installed(r))
        if e.patches_failed:
            self._end(sid, ServerState.FAILED, f"{e.patches_failed} of {len(patches)} patches failed")
        elif e.patches_installed:
            self._end(sid, ServerState.PATCHED, "")
        else:
            self._end(sid, ServerState.PATCHED_NO_UPDATES, "")

    def release_finished(self, *, now: bool = False) -> None:
        """Switch maintenance off for the finished servers still waiting for it, many at a time.

        Completions mostly arrive one by one; one stopMaintenance each would cost a request per
        server. A finished server's release waits (at most ``release_delay``, checked as servers
        finish) until ``release_chunk`` of them are ready and go in one request. With nothing
        left to start, only the last servers patch and finish further apart: then ``chunk_size``
        of them share a request. With nothing in flight, or ``now``, they all go at once, in
        request chunks sent together (the end goes fast).
        A server whose release was refused or answered is not asked again (the release task
        re-checks every run-owned server live at the end, I2).
        """
        if not self.config.maintenance_mode:
            return
        waiting = [
            sid
            for sid in self.ledger.in_phase(Phase.DONE)
            if may_switch_off_now(self.entries[sid]) and self.entries[sid].maintenance_release is None
        ]
        if not waiting:
            return
        if now or self.finished or self.budget_exhausted():
            self.release(waiting)
            return
        clock = self.now()
        seen = [parse_iso8601(self.entries[sid].observed_at) for sid in waiting]
        oldest = max(((clock - t).total_seconds() if t else float("inf")) for t in seen)
        request = self.config.chunk_size or 1
        size = self.config.release_chunk or request
        if not self.ledger.in_phase(Phase.QUEUED) or not self.may_start_more():
            # the tail: nothing more starts, the last servers finish further apart
            size = min(size, request)
        if len(waiting) >= size or oldest >= self.config.release_delay:
            self.release(waiting, chunk=size)

    def release(self, ids: list[str], *, chunk: int | None = None) -> None:
        """Switch maintenance off for finished servers this run may have put into maintenance.

        A server whose maintenance-on job has not been seen ending is left to the release task,
        which waits for the job first: switched off now, the job could land afterwards (I2).
        A queued stopMaintenance counts as released here; the release task re-checks it live.
        """
        if not self.config.maintenance_mode:
            return
        mine = [s for s in ids if may_switch_off_now(self.entries[s])]
        if not mine:
            return
        # in request chunks sent at once: CLC switches a request's servers off one after another
        # (8 s each), so the hundreds finishing at a fleet's end would take an hour as one job
        pieces = chunks(mine, chunk or self.config.chunk_size)
        answers = each(lambda ids: self.api.stop_maintenance(self.config.alias, ids), pieces)
        crash_point(CRASH_AFTER_STOP_MAINTENANCE)  # resilience tests only
        for piece, answer in zip(pieces, answers, strict=True):
            if isinstance(answer, ClcError):
                self.log.warning(
                    "stop maintenance for %s failed (%s); release task retries", _short(piece), answer
                )
                continue
            items = {i.server: i for i in answer}
            for sid in piece:
                item = items.get(sid)
                if item is None:
                    continue  # the release task checks it live
                outcome = stop_answer_outcome(item)
                note = f"stopMaintenance refused: {item.error}" if outcome is ReleaseOutcome.REFUSED else ""
                record_release(self.entries[sid], outcome, note)
        self.log.info(
            "maintenance off asked for %d finished server(s) in %d request(s)", len(mine), len(pieces)
        )
        self.ledger.save()

    def time_out_in_flight(self, reason: str) -> None:
        ids = self.in_flight_ids()
        for sid in ids:
            self._end(sid, ServerState.TIMED_OUT, reason)
        self.ledger.save()
        self._snapshots.settle(ids)
        self.release(ids)

    # --- results -------------------------------------------------------------------------

    def finish(self, results_file: PathLike, *, stop_reason: str | None = None) -> dict[str, Any]:
        """End every unstarted server ``not_attempted``, write the results artifact, return counts."""
        if self.gate.halt_reason():
            reason = str(self.gate.halt_reason())
        elif self.budget_exhausted():
            errors, limit = self.budget_errors(), self.config.max_errors
            reason = f"error budget exhausted: {errors} errors > max_errors {limit}"
        elif not self.may_start_more():
            reason = WINDOW_CLOSED
        else:
            reason = stop_reason or "rollout stopped before this server was started"
        never_started = self.ledger.in_phase(Phase.QUEUED)
        for sid in never_started:
            self._end(sid, ServerState.NOT_ATTEMPTED, reason)
        self.ledger.save()
        # Some were put into maintenance ahead of their start: let those jobs end, then release.
        self._wait_for_maintenance(outstanding_jobs(self.entries, never_started))
        self._snapshots.settle(never_started)
        self.release(never_started)
        self.release_finished(now=True)  # finished servers still waiting to share a request
        rows = [self._row(sid, e) for sid, e in self.ledger.ordered()]
        counts = dict(Counter(r["state"] for r in rows))
        counts["total"] = len(rows)
        write_json(
            results_file,
            {
                "package_key": self.config.package.key,
                "package_id": self.config.package.package_id,
                "alias": self.config.alias,
                "generated_at": utc_text(self.now()),
                "max_concurrency": self.config.max_concurrency,
                "max_errors": self.config.max_errors,
                "errors": self.errors(),
                "budget_exhausted": self.budget_exhausted(),
                **({"stages": self.ledger.data["stages"]} if self.ledger.data.get("stages") else {}),
                **({"halt": self.gate.halt()} if self.gate.halt() else {}),
                "counts": counts,
                "servers": rows,
                "window": window_results(self.config.window, rows),
            },
        )
        self.log.info("rollout of %s finished: %s -> %s", self.config.package.key, counts, results_file)
        return counts

    @staticmethod
    def _row(sid: str, e: LedgerEntry) -> dict[str, Any]:
        """One server's line of the results artifact (plain JSON values)."""
        data = e.to_json()
        return {
            "server_id": sid,
            "state": data["state"],
            "reason": e.reason,
            "execution_id": e.execution_id,
            "queue_job_id": e.job_id,
            "patches": e.patches,
            "patches_installed": e.patches_installed,
            "patches_failed": e.patches_failed,
            "reboots": e.reboots,
            "attempts": e.attempts,
            "started_at": e.started_at,
            "ended_at": e.ended_at,
            "observed_at": e.observed_at,
            "maintenance": data["maintenance"],
            "submissions": len(e.submissions),
            **({"stage": e.stage} if e.stage is not None else {}),
            **({"health": e.health} if e.health is not None else {}),
        }
