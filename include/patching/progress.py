"""The live run board's read model: a run's artifacts and the clock → what every server is doing now.

The rollout writes its ledger before and after every step (``rollout_state``), so the ledger
files are a live, durable picture of a run; this module only reads that picture. It is pure:
the caller (``patchflow.board``) reads the files and asks Airflow for the run's state, and
passes the JSON in. Nothing here is guessed: an in-flight server shows what the ledger says
(request sent, queue job, execution id) and how long ago the request went out; attempts are
shown once the patching service reported them (at completion).

Estimates come from this run alone: a package's remaining time is the mean duration of its
servers that completed so far, applied to the servers still to go at its concurrency. Rollouts
of different packages run side by side, so the run's estimate is the longest of them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from include.patching import rate_control
from include.patching.packages import PACKAGES
from include.patching.rollout_state import IN_FLIGHT, LedgerEntry, MaintenanceOwnership, Phase
from include.patching.states import ERROR_STATES, PROBLEM_STATES, ServerState
from include.timefmt import parse_iso8601


class BoardStatus(StrEnum):
    """Where one server of a package stands right now (one column of the board)."""

    WAITING = "waiting"
    """Queued: not started yet."""
    IN_MAINTENANCE = "in_maintenance"
    """Queued, and put into maintenance ahead of its wave: starts next."""
    IN_FLIGHT = "in_flight"
    """Execute Package was sent; the patching service is working on it."""
    DONE = "done"
    """Ended patched, or already up to date."""
    FAILED = "failed"
    """Ended failed or timed out: counts against the error budget."""
    NOT_ATTEMPTED = "not_attempted"
    """Never sent the package (error budget used up, maintenance not switched on, ...)."""


#: "Waiting", "In maintenance", "In flight", "Done", "Failed", "Not attempted".
STATUS_LABELS: dict[BoardStatus, str] = {s: s.value.replace("_", " ").capitalize() for s in BoardStatus}
#: Statuses after which a server changes no more in this run.
SETTLED = frozenset({BoardStatus.DONE, BoardStatus.FAILED, BoardStatus.NOT_ATTEMPTED})
#: Statuses still to be worked through (they hold the run's estimate).
TO_GO = frozenset({BoardStatus.WAITING, BoardStatus.IN_MAINTENANCE})
_STATUS_OF_STATE = {
    ServerState.PATCHED: BoardStatus.DONE,
    ServerState.PATCHED_NO_UPDATES: BoardStatus.DONE,
    ServerState.FAILED: BoardStatus.FAILED,
    ServerState.TIMED_OUT: BoardStatus.FAILED,
    ServerState.UNHEALTHY: BoardStatus.FAILED,
    ServerState.NOT_ATTEMPTED: BoardStatus.NOT_ATTEMPTED,
    ServerState.REVERTED: BoardStatus.FAILED,
    ServerState.REVERT_FAILED: BoardStatus.FAILED,
    ServerState.SKIPPED_NO_SNAPSHOT: BoardStatus.NOT_ATTEMPTED,
}
BUDGET_GONE = "error budget used up: will not be started"


class Stage(StrEnum):
    """How far the run's artifacts have got."""

    WAITING_FOR_INVENTORY = "waiting_for_inventory"
    WAITING_FOR_PLAN = "waiting_for_plan"
    DRY_RUN = "dry_run"
    ROLLING_OUT = "rolling_out"
    ROLLOUTS_DONE = "rollouts_done"


STAGE_TEXT: dict[Stage, str] = {
    Stage.WAITING_FOR_INVENTORY: "Waiting for the inventory (preflight and inventory are running).",
    Stage.WAITING_FOR_PLAN: "Inventory read; waiting for the plan (classification is running).",
    Stage.DRY_RUN: "Dry run: nothing is patched; the audit reports what would have been.",
    Stage.ROLLING_OUT: "Rolling out.",
    Stage.ROLLOUTS_DONE: "Every rollout has ended; the audit seals the evidence pack next.",
}

Targets = Callable[[Any, str], list[tuple[str, bool]]]
"""``(plan, package_key) -> [(server_id, in_maintenance_at_inventory)]``: the package's targets."""


@dataclass(frozen=True)
class ServerRow:
    """One server on the board."""

    server_id: str
    name: str
    status: BoardStatus
    state: str | None = None
    """Its terminal ``ServerState`` once settled."""
    detail: str = ""
    """The reason of a failure, or what an in-flight server is waiting for."""
    elapsed_seconds: float | None = None
    """In flight: since the request, our clock. Settled: request to observed completion."""
    attempts: int | None = None
    """Initiations the patching service listed for the execution (known at completion)."""


@dataclass(frozen=True)
class PackageBoard:
    """One package's rollout."""

    key: str
    title: str
    rows: list[ServerRow]
    started: bool
    """Its ledger exists: the rollout task has begun."""
    max_errors: int | None
    max_concurrency: int | None
    mean_seconds: float | None
    """Mean request-to-completion time of its completed servers so far."""
    remaining_seconds: float | None
    """Estimated time until its last server settles; None while nothing completed yet."""
    problem: str = ""
    """Why its ledger could not be read (shown instead of guessing)."""
    fleet_errors: int | None = None
    """Errors of every package of the run: ``max_errors`` is fleet-wide (``fleet_budget``)."""

    @property
    def counts(self) -> dict[BoardStatus, int]:
        found = Counter(row.status for row in self.rows)
        return {status: found[status] for status in BoardStatus}

    @property
    def errors(self) -> int:
        return self.counts[BoardStatus.FAILED]

    @property
    def budget_errors(self) -> int:
        """The errors counted against ``max_errors``: every package's when the limit is fleet-wide."""
        return self.errors if self.fleet_errors is None else self.fleet_errors

    @property
    def budget_exhausted(self) -> bool:
        return self.max_errors is not None and rate_control.budget_exhausted(
            self.budget_errors, self.max_errors
        )

    @property
    def settled(self) -> bool:
        return all(row.status in SETTLED for row in self.rows)


@dataclass(frozen=True)
class Board:
    """The whole run as the board shows it."""

    stage: Stage
    packages: list[PackageBoard] = field(default_factory=list)
    not_patched_by_plan: dict[str, int] = field(default_factory=dict)
    """Servers the plan already settled (skips, dry-run plans), by state."""
    settings: dict[str, Any] = field(default_factory=dict)
    elapsed_seconds: float | None = None
    remaining_seconds: float | None = None
    stages: dict[str, Any] = field(default_factory=dict)
    """Staged rollouts, per package: stages and gates (``include.patching.stage_report.summarize``)."""

    @property
    def counts(self) -> dict[BoardStatus, int]:
        total: Counter[BoardStatus] = Counter()
        for package in self.packages:
            total.update(package.counts)
        return {status: total[status] for status in BoardStatus}

    @property
    def failures(self) -> list[ServerRow]:
        """Failed and timed-out servers, in plan order per package."""
        return [row for p in self.packages for row in p.rows if row.status is BoardStatus.FAILED]

    @property
    def not_patched(self) -> list[ServerRow]:
        """Settled servers a new run should retry: failed, timed out, not attempted."""
        return [row for p in self.packages for row in p.rows if row.state in PROBLEM_STATES]

    @property
    def dry_run(self) -> bool:
        return self.stage is Stage.DRY_RUN


def _elapsed(entry: LedgerEntry, now: datetime) -> float | None:
    requested = parse_iso8601(entry.request_time)
    return None if requested is None else max((now - requested).total_seconds(), 0.0)


def _in_flight_detail(entry: LedgerEntry) -> str:
    if entry.execution_id:
        return f"execution {entry.execution_id} running"
    if entry.job_id:
        return f"accepted as job {entry.job_id}; waiting for completion"
    if entry.phase is Phase.SUBMITTING:
        return "request sent; waiting for its answer or its execution to appear"
    return "request accepted; waiting for its execution to appear"


def server_row(server_id: str, name: str, entry: LedgerEntry, now: datetime, budget_gone: bool) -> ServerRow:
    """One ledger entry as a board row."""
    if entry.phase is Phase.DONE and entry.state is not None:
        return ServerRow(
            server_id,
            name,
            _STATUS_OF_STATE.get(entry.state, BoardStatus.FAILED),
            state=entry.state.value,
            detail=entry.reason,
            elapsed_seconds=entry.wall_seconds,
            attempts=entry.attempts,
        )
    if entry.phase in IN_FLIGHT:
        return ServerRow(
            server_id,
            name,
            BoardStatus.IN_FLIGHT,
            detail=_in_flight_detail(entry),
            elapsed_seconds=_elapsed(entry, now),
        )
    if budget_gone:
        return ServerRow(server_id, name, BoardStatus.NOT_ATTEMPTED, detail=BUDGET_GONE)
    if entry.maintenance in (MaintenanceOwnership.REQUESTED, MaintenanceOwnership.OURS):
        job = f" (job {entry.maintenance_job_id})" if entry.maintenance_job_id else ""
        return ServerRow(
            server_id, name, BoardStatus.IN_MAINTENANCE, detail=f"maintenance switched on{job}; starts next"
        )
    if entry.maintenance is MaintenanceOwnership.PREEXISTING:
        return ServerRow(server_id, name, BoardStatus.WAITING, detail="in maintenance since before the run")
    return ServerRow(
        server_id, name, BoardStatus.WAITING, detail=f"stage {entry.stage}" if entry.stage else ""
    )


def _limit(parse: Callable[[Any, int], int], value: Any, total: int) -> int | None:
    try:
        return parse(value, total)
    except (TypeError, ValueError):
        return None


def remaining_seconds(rows: list[ServerRow], mean: float | None, concurrency: int | None) -> float | None:
    """Time until the last of ``rows`` settles: in-flight servers finish, then the rest in waves."""
    in_flight = [r for r in rows if r.status is BoardStatus.IN_FLIGHT]
    to_go = sum(1 for r in rows if r.status in TO_GO)
    if not in_flight and not to_go:
        return 0.0
    if mean is None:
        return None
    current = max((max(mean - (r.elapsed_seconds or 0.0), 0.0) for r in in_flight), default=0.0)
    waves = math.ceil(to_go / max(concurrency or 1, 1))
    return current + waves * mean


def package_board(
    key: str,
    title: str,
    ledger: Mapping[str, Any] | str | None,
    planned: list[tuple[str, bool]],
    names: Mapping[str, str],
    settings: Mapping[str, Any],
    now: datetime,
    fleet_total: int | None = None,
    fleet_errors: int | None = None,
) -> PackageBoard:
    """One package from its ledger (``str``: why it is unreadable; None: not started yet).

    ``fleet_total``/``fleet_errors``: the servers and errors of every package of the run, when
    ``max_concurrency`` and ``max_errors`` are fleet-wide (a percentage is then of them all and
    the budget counts them all, as the rollout does: ``include.patching.fleet_budget``).
    """
    entries: dict[str, LedgerEntry]
    problem = ""
    if isinstance(ledger, Mapping):
        raw = ledger.get("servers") or {}
        order = [sid for sid in ledger.get("order") or raw if sid in raw]
        entries = {sid: LedgerEntry.from_json(raw[sid]) for sid in order}
    else:
        problem = ledger or ""
        entries = {sid: LedgerEntry.new(preexisting_maintenance=pre) for sid, pre in planned}
    total = len(entries) if fleet_total is None else fleet_total
    max_errors = _limit(
        rate_control.max_errors, settings.get("max_errors", rate_control.DEFAULT_MAX_ERRORS), total
    )
    concurrency = _limit(
        rate_control.max_concurrency,
        settings.get("max_concurrency", rate_control.DEFAULT_MAX_CONCURRENCY),
        max(total, 1),
    )
    errors = sum(1 for e in entries.values() if e.state in ERROR_STATES)
    if fleet_errors is not None:
        errors = fleet_errors
    budget_gone = max_errors is not None and rate_control.budget_exhausted(errors, max_errors)
    rows = [server_row(sid, names.get(sid, sid.upper()), e, now, budget_gone) for sid, e in entries.items()]
    seen = [e.wall_seconds for e in entries.values() if e.phase is Phase.DONE and e.wall_seconds is not None]
    mean = sum(seen) / len(seen) if seen else None
    return PackageBoard(
        key=key,
        title=title,
        rows=rows,
        started=isinstance(ledger, Mapping),
        max_errors=max_errors,
        max_concurrency=concurrency,
        mean_seconds=mean,
        remaining_seconds=remaining_seconds(rows, mean, concurrency),
        problem=problem,
        fleet_errors=fleet_errors,
    )


def ledger_errors(ledger: Mapping[str, Any] | str | None) -> int:
    """Servers of one ledger (JSON) that ended in a state counted against the error budget."""
    if not isinstance(ledger, Mapping):
        return 0
    return sum(
        1
        for e in (ledger.get("servers") or {}).values()
        if isinstance(e, Mapping) and e.get("state") in ERROR_STATES
    )


def build_board(
    *,
    inventory_present: bool,
    plan: Mapping[str, Any] | None,
    ledgers: Mapping[str, Mapping[str, Any] | str | None],
    targets: Targets,
    now: datetime,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
) -> Board:
    """The board of one run.

    ``ledgers`` maps a package key to its ledger JSON, to a sentence saying why it could not be
    read, or to None (not written yet). ``targets`` picks a package's servers from the plan
    (the rollout's own rule, so the board and the rollout never disagree about who is in).
    ``started_at``/``ended_at`` are the run's, from Airflow; elapsed time stops at the end.
    """
    clock = ended_at or now
    elapsed = None if started_at is None else max((clock - started_at).total_seconds(), 0.0)
    if plan is None:
        stage = Stage.WAITING_FOR_PLAN if inventory_present else Stage.WAITING_FOR_INVENTORY
        return Board(stage=stage, elapsed_seconds=elapsed)
    settings = dict(plan.get("settings") or {})
    rows = [row for row in plan.get("servers") or [] if isinstance(row, Mapping)]
    names = {str(row.get("id", "")).lower(): str(row.get("name") or "") for row in rows}
    settled = Counter(str(row["state"]) for row in rows if row.get("state"))
    shown = [(p, targets(plan, p.key), ledgers.get(p.key)) for p in PACKAGES]
    shown = [(p, planned, ledger) for p, planned, ledger in shown if planned or ledger is not None]
    # max_concurrency and max_errors count across the run's packages (include.patching.fleet_budget)
    fleet_total = sum(len(planned) for _, planned, _ in shown)
    fleet_errors = sum(ledger_errors(ledger) for _, _, ledger in shown)
    packages = [
        package_board(
            p.key,
            p.title,
            ledger,
            planned,
            names,
            settings,
            clock,
            fleet_total=fleet_total,
            fleet_errors=fleet_errors,
        )
        for p, planned, ledger in shown
    ]
    if settings.get("dry_run"):
        stage = Stage.DRY_RUN
    elif all(p.settled for p in packages):
        stage = Stage.ROLLOUTS_DONE
    else:
        stage = Stage.ROLLING_OUT
    estimates = [p.remaining_seconds for p in packages]
    known = [e for e in estimates if e is not None]
    remaining = max(known, default=0.0) if len(known) == len(estimates) else None
    from include.patching.stage_report import summarize

    return Board(
        stage=stage,
        stages=summarize(plan, {k: v for k, v in ledgers.items() if isinstance(v, Mapping)}),
        packages=packages,
        not_patched_by_plan=dict(sorted(settled.items())),
        settings=settings,
        elapsed_seconds=elapsed,
        remaining_seconds=remaining,
    )
