"""Sliding-window rollout of one patch package under rate control (framework-free).

The operator in ``patchflow.operators.rollout`` is a thin shell around ``Rollout``:
``reconcile()`` once per (re)start, then ``fill()`` → defer → ``apply(outcomes)`` → ``fill()``
… until ``finished``, then ``finish()``.

Rate control: at most ``max_concurrency`` servers in flight; newly freed slots are filled in
plan order. Once errors (failed + timed_out) exceed ``max_errors`` nothing new is started;
the rest end ``not_attempted`` (AWS SSM semantics).

How a package is never executed twice on a server in one run (I1):

1. Before every Execute Package POST the ledger records ``phase=submitting`` with the
   request time; after the answer, ``submitted`` with the job id. Both writes are atomic.
2. The hook never replays the POST once it may have reached the API (lost answer, timeout,
   5xx other than 503): it raises ``PossiblySubmittedError`` and the servers stay
   ``submitting`` (in flight, without job id).
3. On every (re)start ``reconcile()`` reads the patch summary of each in-flight server and
   adopts the newest execution started at/after the request time (minus the allowed clock
   skew). Nothing is re-POSTed for an in-flight server.
4. The trigger watches job-less servers through the summary only; if no execution appears
   within the grace period it reports ``not_found``. Only then, and only if a fresh summary
   read in the worker shows no execution after the request *and no pending execution at
   all*, is the server queued again — at most ``max_submissions`` times in total.
5. The API refuses a second package on a server with a pending execution (``isQueued:
   false``): that answer ends the server ``failed`` with the API's message.

Maintenance (I2): ``maintenance: requested`` is recorded before startMaintenance is sent;
a server reported in maintenance by the inventory (or answered "already in desired state"
before this run ever asked) is ``preexisting`` and never switched off by this run. Finished
servers with run-owned maintenance are switched off at once; ``ReleaseMaintenanceOperator``
re-checks every run-owned server at the end, whatever happened.

Bounded time (I7): every submission has a deadline (request time + ``server_timeout``)
enforced by the trigger; ``time_out_in_flight`` is the backstop for a deferral timeout.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from include.artifacts import PathLike, write_json
from include.patching import api_shapes as shapes
from include.patching.api_shapes import BatchItem, iso, parse_time
from include.patching.backoff import utcnow
from include.patching.chaos import (
    CRASH_AFTER_START_MAINTENANCE,
    CRASH_AFTER_STOP_MAINTENANCE,
    CRASH_AFTER_SUBMIT,
    crash_point,
)
from include.patching.clc_errors import ClcError, ClcResponseError, PossiblySubmittedError
from include.patching.packages import PatchPackage
from include.patching.rate_control import budget_exhausted
from include.patching.rollout_state import DONE, IN_FLIGHT, QUEUED, SUBMITTED, SUBMITTING, Ledger
from include.patching.states import ServerState

log = logging.getLogger(__name__)


class ClcApi(Protocol):
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


@dataclass(frozen=True)
class RolloutConfig:
    package: PatchPackage
    alias: str
    max_concurrency: int
    max_errors: int
    server_timeout: float
    maintenance_mode: bool = True
    patch_debug_mode: bool = False
    clock_skew: float = 120.0
    maintenance_timeout: float = 300.0
    job_poll_interval: float = 2.0
    max_submissions: int = 2


def _short(ids: list[str], limit: int = 5) -> str:
    return ", ".join(ids[:limit]) + (f", … +{len(ids) - limit}" if len(ids) > limit else "")


class Rollout:
    def __init__(
        self,
        api: ClcApi,
        ledger: Ledger,
        config: RolloutConfig,
        *,
        now: Callable[[], datetime] = utcnow,
        logger: logging.Logger | Any = log,
    ) -> None:
        self.api, self.ledger, self.config, self.now, self.log = api, ledger, config, now, logger

    # --- views ---------------------------------------------------------------------------

    @property
    def entries(self) -> dict[str, dict[str, Any]]:
        return self.ledger.servers

    def in_flight_ids(self) -> list[str]:
        return self.ledger.in_phase(*IN_FLIGHT)

    def errors(self) -> int:
        bad = {ServerState.FAILED.value, ServerState.TIMED_OUT.value}
        return sum(1 for e in self.entries.values() if e["state"] in bad)

    def budget_exhausted(self) -> bool:
        return budget_exhausted(self.errors(), self.config.max_errors)

    @property
    def finished(self) -> bool:
        if self.in_flight_ids():
            return False
        return self.budget_exhausted() or not self.ledger.in_phase(QUEUED)

    def watch_list(self) -> list[dict[str, Any]]:
        """Trigger input for every in-flight server."""
        out = []
        quiet = self.quiet_period()
        for sid in self.in_flight_ids():
            e = self.entries[sid]
            deadline = parse_time(e["request_time"]) + timedelta(seconds=self.config.server_timeout)
            out.append(
                {
                    "server_id": sid,
                    "job_id": e["job_id"],
                    "requested_at": e["request_time"],
                    "deadline": deadline.isoformat(),
                    "known_executions": e.get("known_executions", []),
                    "quiet_seconds": quiet,
                }
            )
        return out

    def quiet_period(self) -> float:
        """Seconds after a request during which polling is pointless, learnt from this rollout.

        Servers of one package in one run take similar times. Once a few have completed, the
        quickest of them (10th percentile, so one outlier does not count) tells how long any
        server needs at least; the trigger does not poll a server before that. Cuts the API
        requests per server without delaying the detection of a completion.
        """
        seen = sorted(e["wall_seconds"] for e in self.entries.values() if e.get("wall_seconds") is not None)
        if len(seen) < 5:
            return 0.0
        return seen[len(seen) // 10] * 0.9

    def latest_deadline(self) -> datetime | None:
        deadlines = [parse_time(w["deadline"]) for w in self.watch_list()]
        return max(deadlines) if deadlines else None

    def progress(self) -> str:
        total = len(self.entries)
        done = len(self.ledger.in_phase(DONE))
        return (
            f"in flight {len(self.in_flight_ids())}; done {done}/{total}; "
            f"errors {self.errors()}/{self.config.max_errors}"
        )

    # --- reconcile -----------------------------------------------------------------------

    def reconcile(self) -> None:
        """Adopt executions of servers a previous attempt may have submitted; never re-POST."""
        adopted, watching = [], []
        for sid in self.in_flight_ids():
            e = self.entries[sid]
            try:
                summary = self.api.get_patch_summary(self.config.alias, sid)
            except ClcError as exc:
                self.log.warning("reconcile %s: summary unreadable (%s); trigger keeps looking", sid, exc)
                watching.append(sid)
                continue
            since = parse_time(e["request_time"])
            execution = (
                shapes.select_execution(summary, since, self.config.clock_skew, e.get("known_executions", []))
                if since
                else None
            )
            if execution is not None:
                e["execution_id"] = execution["execution_id"]
                e["phase"] = SUBMITTED
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

    # --- starting servers ----------------------------------------------------------------

    def fill(self) -> list[str]:
        """Start servers until the window is full, the queue is empty or the budget is gone."""
        started: list[str] = []
        while not self.budget_exhausted():
            slots = self.config.max_concurrency - len(self.in_flight_ids())
            queued = self.ledger.in_phase(QUEUED)
            if slots <= 0 or not queued:
                break
            batch = queued[:slots]
            self.ledger.data["waves"] += 1
            wave = self.ledger.data["waves"]
            ready = self._snapshot_executions(batch)
            ready = self._maintenance_on(ready) if self.config.maintenance_mode else ready
            if ready:
                self._submit(ready)
            submitted = [s for s in ready if self.entries[s]["phase"] in IN_FLIGHT]
            self.release([s for s in batch if self.entries[s]["phase"] == DONE])
            started += submitted
            self._prepare_next(batch)
            self.log.info(
                "wave %d: started %d server(s) (%s); %s",
                wave,
                len(submitted),
                _short(submitted),
                self.progress(),
            )
        return started

    def _end(self, sid: str, state: ServerState, reason: str = "", **extra: Any) -> None:
        e = self.entries[sid]
        e.update(phase=DONE, state=state.value, reason=reason, **extra)
        if state is not ServerState.NOT_ATTEMPTED and not e["ended_at"]:
            e["ended_at"] = iso(self.now())

    def _snapshot_executions(self, batch: list[str]) -> list[str]:
        """Record each server's existing executions before anything is touched.

        The new execution is then the one not in this list (clock-independent, I1/I4); and a
        server with an execution already pending (someone else's run) is left alone.
        """
        ready = []
        for sid in batch:
            e = self.entries[sid]
            if "known_executions" in e:  # recorded by an earlier attempt: keep the original list
                ready.append(sid)
                continue
            try:
                summary = self.api.get_patch_summary(self.config.alias, sid)
            except ClcError as exc:
                self._end(sid, ServerState.FAILED, f"patch history unreadable before patching: {exc}")
                continue
            pending = [x["execution_id"] for x in summary if x.get("status") == "pending"]
            if pending:
                self._end(
                    sid,
                    ServerState.FAILED,
                    f"execution {pending[0]} was already pending on the server; not started again",
                )
                continue
            e["known_executions"] = [x["execution_id"] for x in summary]
            ready.append(sid)
        self.ledger.save()
        return ready

    def _prepare_next(self, batch: list[str]) -> None:
        """Put the servers that will start next into maintenance now, without waiting.

        Maintenance jobs are slow (CLC processes a batch's servers one after another): started
        ahead, they run while the current servers patch, so freed slots are refilled at once.
        The next wave confirms the job before it sends anything (``_confirm_maintenance``).
        """
        if not self.config.maintenance_mode or self.budget_exhausted():
            return
        ahead = [s for s in self.ledger.in_phase(QUEUED) if s not in batch][: len(batch)]
        ahead = [s for s in ahead if self.entries[s]["maintenance"] not in ("ours", "preexisting")]
        if ahead:
            self._maintenance_on(self._snapshot_executions(ahead), wait=False)

    def _confirm_maintenance(self, batch: list[str]) -> None:
        """Wait for maintenance jobs started ahead of time; fail the servers whose job failed."""
        jobs: dict[str, list[str]] = {}
        for sid in batch:
            e = self.entries[sid]
            if (
                e["maintenance"] == "ours"
                and e.get("maintenance_job_id")
                and not e.get("maintenance_confirmed")
            ):
                jobs.setdefault(e["maintenance_job_id"], []).append(sid)
        self._wait_for_maintenance(jobs)

    def _wait_for_maintenance(self, jobs: dict[str, list[str]]) -> None:
        for job_id, members in jobs.items():
            status = self.api.wait_for_job(
                self.config.alias,
                job_id,
                timeout=self.config.maintenance_timeout,
                interval=self.config.job_poll_interval,
            )
            for sid in members:
                if status == shapes.QUEUE_SUCCEEDED:
                    self.entries[sid]["maintenance_confirmed"] = True
                else:
                    self._end(sid, ServerState.FAILED, f"maintenance job {job_id} ended {status}")
        self.ledger.save()

    def _maintenance_on(self, batch: list[str], *, wait: bool = True) -> list[str]:
        if wait:
            self._confirm_maintenance(batch)
        need = [s for s in batch if self.entries[s]["maintenance"] not in ("ours", "preexisting")]
        if not need:
            return [s for s in batch if self.entries[s]["phase"] == QUEUED]
        asked_before = {s for s in need if self.entries[s]["maintenance"] == "requested"}
        for sid in need:
            self.entries[sid]["maintenance"] = "requested"
        self.ledger.save()
        try:
            items = {i.server: i for i in self.api.start_maintenance(self.config.alias, need)}
        except ClcError as exc:
            for sid in need:
                self._end(sid, ServerState.FAILED, f"maintenance mode could not be started: {exc}")
            self.ledger.save()
            return [s for s in batch if s not in need]
        crash_point(CRASH_AFTER_START_MAINTENANCE)  # resilience tests only
        jobs: dict[str, list[str]] = {}
        for sid in need:
            item, e = items.get(sid), self.entries[sid]
            if item is None:
                self._end(sid, ServerState.FAILED, "maintenance mode: server missing from the API answer")
            elif item.queued:
                e["maintenance"], e["maintenance_job_id"] = "ours", item.job_id
                jobs.setdefault(item.job_id, []).append(sid)
            elif not item.error or "desired state" in item.error:
                # Already in maintenance. If this run asked before (crash), it is ours.
                e["maintenance"] = "ours" if sid in asked_before else "preexisting"
            else:
                e["maintenance"] = "refused"
                self._end(sid, ServerState.FAILED, f"maintenance mode refused: {item.error}")
        self.ledger.save()
        if wait:
            self._wait_for_maintenance(jobs)
        return [s for s in batch if self.entries[s]["phase"] == QUEUED]

    def _submit(self, batch: list[str]) -> None:
        now = iso(self.now())
        for sid in batch:
            e = self.entries[sid]
            e.update(phase=SUBMITTING, request_time=now, job_id=None)
            e["started_at"] = e["started_at"] or now
            e["submissions"].append({"request_time": now, "job_id": None, "result": "submitting"})
        self.ledger.save()  # durable BEFORE the POST (I1)
        package = self.config.package
        try:
            items = self.api.execute_package(
                self.config.alias,
                batch,
                package.package_id,
                package.parameters(patch_debug_mode=self.config.patch_debug_mode),
            )
        except (PossiblySubmittedError, ClcResponseError) as exc:
            self.log.warning(
                "execute package for %d server(s) may have been processed (%s); "
                "reconciling from the patch summaries",
                len(batch),
                exc,
            )
            for sid in batch:
                self.entries[sid]["submissions"][-1]["result"] = "possibly_submitted"
            self.ledger.save()
            return
        except ClcError as exc:  # definitely not processed (4xx, 429/503 exhausted, never sent)
            for sid in batch:
                self.entries[sid]["submissions"][-1]["result"] = "refused"
                self._end(sid, ServerState.FAILED, f"execute package not accepted: {exc}")
            self.ledger.save()
            return
        crash_point(CRASH_AFTER_SUBMIT)  # resilience tests only: die before recording the answer
        answered = {i.server: i for i in items}
        for sid in batch:
            item, e = answered.get(sid), self.entries[sid]
            if item is None:
                e["submissions"][-1]["result"] = "possibly_submitted"
            elif item.queued:
                e.update(phase=SUBMITTED, job_id=item.job_id)
                e["submissions"][-1].update(result="submitted", job_id=item.job_id)
            else:
                e["submissions"][-1]["result"] = "refused"
                self._end(sid, ServerState.FAILED, f"execute package refused: {item.error or 'not queued'}")
        self.ledger.save()

    # --- outcomes ------------------------------------------------------------------------

    def apply(self, outcomes: dict[str, dict[str, Any]]) -> None:
        """Record the trigger's outcomes; read per-patch details; release maintenance."""
        finished = []
        for sid, out in outcomes.items():
            e = self.entries.get(sid)
            if e is None or e["phase"] not in IN_FLIGHT:
                continue  # stale or duplicate event
            state = out.get("state")
            if state == "completed":
                self._complete(sid, out)
            elif state == "failed":
                self._end(
                    sid,
                    ServerState.FAILED,
                    out.get("reason") or "failed",
                    execution_id=out.get("execution_id"),
                )
            elif state == "not_found":
                self._not_found(sid)
            else:
                self._end(
                    sid,
                    ServerState.TIMED_OUT,
                    out.get("reason") or "timed out",
                    execution_id=out.get("execution_id") or e["execution_id"],
                )
            if e["phase"] == DONE:
                finished.append(sid)
        self.ledger.save()
        self.release(finished)
        counts = Counter(self.entries[s]["state"] for s in finished)
        if finished:
            self.log.info("finished %d server(s): %s; %s", len(finished), dict(counts), self.progress())

    def _complete(self, sid: str, out: dict[str, Any]) -> None:
        execution = out.get("execution") or {}
        observed, requested = (
            parse_time(out.get("observed_at")),
            parse_time(self.entries[sid]["request_time"]),
        )
        if observed and requested:
            self.entries[sid]["wall_seconds"] = max((observed - requested).total_seconds(), 0.0)
        execution_id = execution.get("execution_id") or out.get("execution_id")
        # Timings come from the patching service's execution record (the evidence), falling
        # back to our request time; mixing our clock with the API's would distort durations.
        extra: dict[str, Any] = {
            "execution_id": execution_id,
            "reboots": int(execution.get("reboots") or 0),
            "started_at": execution.get("start_time") or self.entries[sid]["started_at"],
            "ended_at": execution.get("end_time") or out.get("observed_at"),
        }
        try:
            detail = self.api.get_patch_detail(self.config.alias, sid, execution_id)
        except ClcError as exc:
            installed = int(execution.get("installed") or 0)
            state = ServerState.PATCHED if installed else ServerState.PATCHED_NO_UPDATES
            self._end(
                sid,
                state,
                f"per-patch detail unavailable ({exc}); counts from the summary",
                patches_installed=installed,
                **extra,
            )
            return
        rows = shapes.patch_rows(detail)
        failed = sum(1 for r in rows if shapes.patch_failed(r))
        installed = sum(1 for r in rows if not shapes.patch_failed(r) and r["status"] == "completed")
        extra.update(patches=rows, patches_installed=installed, patches_failed=failed)
        if failed:
            self._end(sid, ServerState.FAILED, f"{failed} of {len(rows)} patches failed", **extra)
        elif installed:
            self._end(sid, ServerState.PATCHED, "", **extra)
        else:
            self._end(sid, ServerState.PATCHED_NO_UPDATES, "", **extra)

    def _not_found(self, sid: str) -> None:
        """No execution appeared for a submission whose answer was lost: resubmit only if safe."""
        e = self.entries[sid]
        try:
            summary = self.api.get_patch_summary(self.config.alias, sid)
        except ClcError as exc:
            self._end(sid, ServerState.FAILED, f"submission unconfirmed and summary unreadable: {exc}")
            return
        execution = shapes.select_execution(summary, parse_time(e["request_time"]), self.config.clock_skew)
        if execution is not None:
            e.update(phase=SUBMITTED, execution_id=execution["execution_id"])  # adopt, keep watching
        elif shapes.has_pending(summary):
            self._end(
                sid,
                ServerState.FAILED,
                "submission unconfirmed and another execution is pending: not resubmitting",
            )
        elif len(e["submissions"]) < self.config.max_submissions:
            e["submissions"][-1]["result"] = "lost"
            e["phase"] = QUEUED
            self.log.warning("%s: the lost submission never reached the patching service; queued again", sid)
        else:
            self._end(
                sid,
                ServerState.FAILED,
                f"no execution after {len(e['submissions'])} submission(s) whose answers were lost",
            )

    def release(self, ids: list[str]) -> None:
        """Switch maintenance off for finished servers this run put into maintenance."""
        mine = [
            s
            for s in ids
            if self.entries[s]["maintenance"] in ("ours", "requested")
            and not self.entries[s]["maintenance_released"]
        ]
        if not mine or not self.config.maintenance_mode:
            return
        try:
            items = {i.server: i for i in self.api.stop_maintenance(self.config.alias, mine)}
        except ClcError as exc:
            self.log.warning("stop maintenance for %s failed (%s); release task retries", _short(mine), exc)
            return
        crash_point(CRASH_AFTER_STOP_MAINTENANCE)  # resilience tests only
        for sid in mine:
            item = items.get(sid)
            if item is not None and (item.queued or not item.error):
                self.entries[sid]["maintenance_released"] = True
        self.ledger.save()

    def time_out_in_flight(self, reason: str) -> None:
        ids = self.in_flight_ids()
        for sid in ids:
            self._end(sid, ServerState.TIMED_OUT, reason)
        self.ledger.save()
        self.release(ids)

    # --- results -------------------------------------------------------------------------

    def finish(self, results_file: PathLike, *, stop_reason: str | None = None) -> dict[str, Any]:
        """End every unstarted server ``not_attempted``, write the results artifact, return counts."""
        if self.budget_exhausted():
            reason = f"error budget exhausted: {self.errors()} errors > max_errors {self.config.max_errors}"
        else:
            reason = stop_reason or "rollout stopped before this server was started"
        never_started = self.ledger.in_phase(QUEUED)
        for sid in never_started:
            self._end(sid, ServerState.NOT_ATTEMPTED, reason)
        self.ledger.save()
        self.release(never_started)  # some were put into maintenance ahead of their start
        rows = [self._row(sid, e) for sid, e in self.ledger.ordered()]
        counts = dict(Counter(r["state"] for r in rows))
        counts["total"] = len(rows)
        write_json(
            results_file,
            {
                "package_key": self.config.package.key,
                "package_id": self.config.package.package_id,
                "alias": self.config.alias,
                "generated_at": iso(self.now()),
                "max_concurrency": self.config.max_concurrency,
                "max_errors": self.config.max_errors,
                "errors": self.errors(),
                "budget_exhausted": self.budget_exhausted(),
                "counts": counts,
                "servers": rows,
            },
        )
        self.log.info("rollout of %s finished: %s -> %s", self.config.package.key, counts, results_file)
        return counts

    @staticmethod
    def _row(sid: str, e: dict[str, Any]) -> dict[str, Any]:
        return {
            "server_id": sid,
            "state": e["state"],
            "reason": e["reason"],
            "execution_id": e["execution_id"],
            "queue_job_id": e["job_id"],
            "patches": e["patches"],
            "patches_installed": e["patches_installed"],
            "patches_failed": e["patches_failed"],
            "reboots": e["reboots"],
            "started_at": e["started_at"],
            "ended_at": e["ended_at"],
            "maintenance": e["maintenance"],
            "submissions": len(e["submissions"]),
        }
