"""Maintenance mode rules of a patch run (I2), shared by the rollout and the release task.

One home for: who owns a server's maintenance after a startMaintenance answer, when a server
may be switched off, which maintenance-on jobs are still outstanding (and waiting for them),
and how release outcomes are recorded in the ledger (which the audit reads). Framework-free:
``Rollout`` and ``ReleaseMaintenanceOperator`` both call it with their CLC client.

The release task's procedure (``MaintenanceRelease``): wait for every maintenance-on job the
ledger recorded and has not seen end (a slow job landing after the release would leave the
server in maintenance), bounded by ``job_timeout``; check every run-owned server live and stop
maintenance for those still in it, waiting for that job; record the outcome per server.
Servers that were in maintenance before the run (``preexisting``) are never touched.

The rollout switches finished servers off at once (``may_switch_off_now``) and counts a queued
stopMaintenance as released; the release task re-checks every run-owned server live and keeps
that outcome only when the server is indeed out of maintenance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from include.clc import shapes
from include.clc.errors import ClcApiError, ClcError
from include.clc.shapes import BatchItem
from include.patching.chaos import CRASH_AFTER_STOP_MAINTENANCE, crash_point
from include.patching.chunking import chunks, each
from include.patching.live_state import server_reader
from include.patching.rollout_state import (
    JOB_TERMINAL,
    RELEASED_OUTCOMES,
    Ledger,
    LedgerEntry,
    MaintenanceOwnership,
    ReleaseOutcome,
)

log = logging.getLogger(__name__)

KEPT_PREEXISTING_NOTE = "in maintenance before the run; left on"


class JobApi(Protocol):
    """Waiting for a queue job (the rollout's client has this too)."""

    def wait_for_job(
        self, alias: str, job_id: str, *, timeout: float = ..., interval: float = ...
    ) -> str: ...


class MaintenanceApi(JobApi, Protocol):
    """What the release needs from the CLC client (``patchflow.hooks.clc.ClcHook``)."""

    def stop_maintenance(self, alias: str, ids: list[str]) -> list[BatchItem]: ...
    def get_server(self, alias: str, server_id: str) -> dict: ...


# --- rules ---------------------------------------------------------------------------------


def nothing_to_do(item: BatchItem) -> bool:
    """The platform's "already in the desired state" answer: not queued, no real error (§6.1)."""
    return not item.queued and (not item.error or "desired state" in item.error)


def ownership_after_start(item: BatchItem) -> MaintenanceOwnership:
    """Who owns maintenance after this run's startMaintenance answer for one server.

    Queued, or "already in maintenance" (possibly the hook's retry of a request whose answer
    was lost), make it the run's to release; only the inventory makes a server preexisting.
    """
    if item.queued or nothing_to_do(item):
        return MaintenanceOwnership.OURS
    return MaintenanceOwnership.REFUSED


#: Ownership after which nothing more is asked of the platform before patching.
MAINTENANCE_SETTLED = frozenset({MaintenanceOwnership.OURS, MaintenanceOwnership.PREEXISTING})


def needs_start(entry: LedgerEntry) -> bool:
    """startMaintenance must (still) be asked for the server before it may be sent the package."""
    return entry.maintenance not in MAINTENANCE_SETTLED


def record_release(entry: LedgerEntry, outcome: ReleaseOutcome, note: str = "") -> None:
    """Write one server's release outcome into its ledger entry (the audit reads it)."""
    entry.maintenance_release = outcome
    entry.maintenance_note = note
    entry.maintenance_released = outcome in RELEASED_OUTCOMES


def job_outstanding(entry: LedgerEntry) -> bool:
    """A maintenance-on job was queued for the server and has not been seen terminal yet."""
    return bool(entry.maintenance_job_id) and entry.maintenance_job_status not in JOB_TERMINAL


def may_switch_off_now(entry: LedgerEntry) -> bool:
    """Run-owned, not released yet, and no maintenance-on job that could land afterwards."""
    return entry.run_owned_maintenance and not entry.maintenance_released and not job_outstanding(entry)


def outstanding_jobs(servers: Mapping[str, LedgerEntry], ids: Iterable[str]) -> dict[str, list[str]]:
    """Maintenance-on jobs of these servers not yet seen ending, with their servers."""
    jobs: dict[str, list[str]] = {}
    for sid in ids:
        entry = servers[sid]
        if entry.run_owned_maintenance and job_outstanding(entry):
            jobs.setdefault(str(entry.maintenance_job_id), []).append(sid)
    return jobs


def stop_answer_outcome(item: BatchItem) -> ReleaseOutcome:
    """The release outcome a stopMaintenance answer stands for (queued: its job decides in the task)."""
    if item.queued:
        return ReleaseOutcome.RELEASED
    if nothing_to_do(item):
        return ReleaseOutcome.ALREADY_OFF
    return ReleaseOutcome.REFUSED


def job_not_ended_note(job_id: str, status: str | None, timeout: float, what: str) -> str:
    """Why a job's effect could not be confirmed: still running, or its status unreadable."""
    seen = f"still {status}" if status else "unreadable"
    return f"{what} job {job_id} {seen} after {timeout:g} s"


def wait_for_job(
    api: JobApi, alias: str, job_id: str, *, timeout: float, interval: float, logger: Any = log
) -> str | None:
    """The job's status after waiting at most ``timeout`` seconds; None when unreadable."""
    try:
        return api.wait_for_job(alias, job_id, timeout=max(timeout, 0.0), interval=interval)
    except ClcError as exc:
        logger.warning("queue job %s: status unreadable (%s)", job_id, exc)
        return None


# --- the release task's procedure -----------------------------------------------------------


@dataclass
class ReleaseReport:
    """The release task's per-server findings (XCom: lists of server ids)."""

    released: list[str] = field(default_factory=list)
    already_off: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    """Servers left in (or possibly in) maintenance, with the reason."""

    def as_xcom(self) -> dict[str, list[str]]:
        return {"released": self.released, "already_off": self.already_off, "failed": sorted(self.problems)}


class MaintenanceRelease:
    """Take every server this run may have put into maintenance out again, recording why."""

    def __init__(
        self,
        api: MaintenanceApi,
        ledger: Ledger,
        *,
        job_timeout: float,
        job_poll_interval: float,
        chunk_size: int | None = None,
        logger: Any = log,
    ) -> None:
        self.api, self.ledger, self.log = api, ledger, logger
        self.job_timeout, self.job_poll_interval = job_timeout, job_poll_interval
        self.chunk_size = chunk_size
        """Servers per stopMaintenance request, the requests sent at once (None: one request)."""
        self.report = ReleaseReport()

    def run(self) -> ReleaseReport:
        """Keep preexisting maintenance, then release the run-owned servers; outcomes in the ledger."""
        self.keep_preexisting()
        owned = self.ledger.run_owned_maintenance()
        outstanding = self._await_maintenance_jobs(owned)
        still_on = self._check_live(owned, outstanding)
        if still_on:
            self._switch_off(still_on)
        return self.report

    def keep_preexisting(self) -> None:
        kept = self.ledger.preexisting_maintenance()
        for sid in kept:
            record_release(self.ledger.servers[sid], ReleaseOutcome.KEPT_PREEXISTING, KEPT_PREEXISTING_NOTE)
        if kept:
            self.log.info(
                "leaving %d server(s) in maintenance: they were before the run (%s)",
                len(kept),
                ", ".join(kept),
            )

    def _wait(self, job_id: str, deadline: float) -> str | None:
        return wait_for_job(
            self.api,
            self.ledger.alias,
            job_id,
            timeout=deadline - time.monotonic(),
            interval=self.job_poll_interval,
            logger=self.log,
        )

    def _await_maintenance_jobs(self, owned: list[str]) -> dict[str, str]:
        """Wait for recorded maintenance-on jobs not yet seen ending; return ``{server: why}`` still open."""
        jobs = outstanding_jobs(self.ledger.servers, owned)
        if not jobs:
            return {}
        self.log.info(
            "waiting up to %g s for %d maintenance-on job(s) before deciding what to switch off: %s",
            self.job_timeout,
            len(jobs),
            ", ".join(jobs),
        )
        deadline = time.monotonic() + self.job_timeout
        still_open: dict[str, str] = {}
        for job_id, members in jobs.items():
            status = self._wait(job_id, deadline)
            for sid in members:
                self.ledger.servers[sid].maintenance_job_status = status
                if status not in JOB_TERMINAL:
                    still_open[sid] = (
                        f"{job_not_ended_note(job_id, status, self.job_timeout, 'maintenance-on')}: it may "
                        "still switch maintenance on; check the server and stop maintenance by hand"
                    )
        return still_open

    def _check_live(self, owned: list[str], outstanding: dict[str, str]) -> list[str]:
        """Servers still in maintenance; the others are recorded (off, gone, or undecidable)."""
        still_on = []
        read = server_reader(self.api, self.ledger.alias, owned, logger=self.log)  # few group reads
        for sid in owned:
            entry = self.ledger.servers[sid]
            try:
                on = shapes.in_maintenance(read(sid))
            except ClcApiError as exc:
                if exc.status == 404:
                    record_release(entry, ReleaseOutcome.ALREADY_OFF, "server no longer exists")
                    self.report.already_off.append(sid)
                else:
                    self._problem(sid, ReleaseOutcome.UNCONFIRMED, f"state unreadable: {exc}")
                continue
            except ClcError as exc:
                self._problem(sid, ReleaseOutcome.UNCONFIRMED, f"state unreadable: {exc}")
                continue
            if on:
                still_on.append(sid)
            elif sid in outstanding:
                self._problem(sid, ReleaseOutcome.UNCONFIRMED, outstanding[sid])
            else:
                if entry.maintenance_release is not ReleaseOutcome.RELEASED:
                    record_release(entry, ReleaseOutcome.ALREADY_OFF)
                self.report.already_off.append(sid)
        return still_on

    def _switch_off(self, still_on: list[str]) -> None:
        """stopMaintenance in request chunks sent at once (CLC processes a request's servers one
        after another: hundreds in one job outlast any reasonable wait), then wait for the jobs."""
        pieces = chunks(still_on, self.chunk_size)
        answers = each(lambda ids: self.api.stop_maintenance(self.ledger.alias, ids), pieces)
        crash_point(CRASH_AFTER_STOP_MAINTENANCE)  # resilience tests only
        items: dict[str, Any] = {}
        for piece, answer in zip(pieces, answers, strict=True):
            if isinstance(answer, ClcError):
                outcome = (
                    ReleaseOutcome.REFUSED if isinstance(answer, ClcApiError) else ReleaseOutcome.UNCONFIRMED
                )
                for sid in piece:
                    self._problem(sid, outcome, f"stopMaintenance failed: {answer}")
                continue
            items.update({i.server: i for i in answer})
        jobs: dict[str, list[str]] = {}
        for sid in still_on:
            if sid in self.report.problems:
                continue
            item = items.get(sid)
            if item is None:
                self._problem(sid, ReleaseOutcome.UNCONFIRMED, "missing from the stopMaintenance answer")
                continue
            outcome = stop_answer_outcome(item)
            if outcome is ReleaseOutcome.RELEASED:  # queued: its job decides
                jobs.setdefault(str(item.job_id), []).append(sid)
            elif outcome is ReleaseOutcome.ALREADY_OFF:
                record_release(self.ledger.servers[sid], outcome)
                self.report.already_off.append(sid)
            else:
                self._problem(sid, outcome, f"stopMaintenance refused: {item.error}")
        deadline = time.monotonic() + self.job_timeout
        for job_id, members in jobs.items():
            status = self._wait(job_id, deadline)
            for sid in members:
                self._stop_job_ended(sid, job_id, status)

    def _stop_job_ended(self, sid: str, job_id: str, status: str | None) -> None:
        if status == shapes.QUEUE_SUCCEEDED:
            record_release(self.ledger.servers[sid], ReleaseOutcome.RELEASED)
            self.report.released.append(sid)
        elif status in shapes.QUEUE_FAILED:
            self._problem(sid, ReleaseOutcome.REFUSED, f"stopMaintenance job {job_id} ended {status}")
        else:
            note = job_not_ended_note(job_id, status, self.job_timeout, "stopMaintenance")
            self._problem(sid, ReleaseOutcome.UNCONFIRMED, note)

    def _problem(self, sid: str, outcome: ReleaseOutcome, note: str) -> None:
        record_release(self.ledger.servers[sid], outcome, note)
        self.report.problems[sid] = note
