"""The live run board and the run's tab: pages added to the reports app (``patchflow.web``).

The run's tab in Airflow (an external view of every DAG run, see ``patchflow_plugin``) opens
``/run/<dag_id>/<run_id>``, which decides what a person sees: the sealed audit report once the
run's evidence pack exists, the live board before that, and a plain explanation on runs of
any other DAG (Airflow 3.3 shows a dag_run tab on every DAG's runs and cannot restrict it).

The board reads the run's artifacts (inventory, plan, one rollout ledger per package) through
the pure read model ``include.patching.progress`` and asks Airflow's metadata database only
for the run's state and its start and end. It refreshes itself: ``board.js`` fetches the
board part of the page again every few seconds while the run is live (a ``<noscript>``
meta refresh does it without scripts).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow.utils.state import DagRunState

from include.artifacts import read_json, run_folder
from include.patching.packages import PACKAGES
from include.patching.progress import (
    STAGE_TEXT,
    STATUS_LABELS,
    Board,
    BoardStatus,
    PackageBoard,
    ServerRow,
    Stage,
    build_board,
)
from include.patching.rerun import Rerun, rerun_for
from include.patching.rollout_state import ledger_path
from include.patching.states import PROBLEM_STATES
from include.reporting.page_parts import state_badge
from include.timefmt import duration_text, utc_text, utcnow

log = logging.getLogger(__name__)

PATCH_DAG_ID = "patch_fleet"
"""The only DAG whose runs have a board and an audit report."""
REFRESH_SECONDS = 5
ROW_LIMIT = 300
"""Servers listed per package; a bigger rollout lists those needing an eye first (counts stay whole)."""
#: The order in which a truncated list shows servers.
ROW_PRIORITY = (
    BoardStatus.FAILED,
    BoardStatus.IN_FLIGHT,
    BoardStatus.IN_MAINTENANCE,
    BoardStatus.NOT_ATTEMPTED,
    BoardStatus.WAITING,
    BoardStatus.DONE,
)
#: Airflow run states after which nothing changes any more.
FINAL_RUN_STATES = frozenset({DagRunState.SUCCESS, DagRunState.FAILED})


@dataclass(frozen=True)
class RunFacts:
    """What Airflow knows about a run that its artifacts do not say."""

    state: DagRunState | None
    start_date: datetime | None
    end_date: datetime | None

    @property
    def final(self) -> bool:
        return self.state in FINAL_RUN_STATES


RunFactsLookup = Callable[[str, str], RunFacts | None]


def airflow_run_facts(dag_id: str, run_id: str) -> RunFacts | None:
    """The run's state and times from Airflow's metadata database (inside the API server)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with create_session() as session:
            run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
            if run is None:
                return None
            return RunFacts(
                state=DagRunState(run.state) if run.state else None,
                start_date=run.start_date,
                end_date=run.end_date,
            )
    except SQLAlchemyError as exc:  # the board still shows the artifacts, without Airflow's side
        log.warning("run %s/%s: Airflow's run record unreadable (%s)", dag_id, run_id, exc)
        return None


def _read(path: Any) -> tuple[Any, str]:
    """``(json, "")``, ``(None, "")`` when absent, or ``(None, why)`` when unreadable."""
    if not path.exists():
        return None, ""
    try:
        return read_json(path), ""
    except (OSError, ValueError) as exc:
        return None, str(exc)


def load_board(artifacts: Any, dag_id: str, run_id: str, facts: RunFacts | None, now: datetime) -> Board:
    """The run's board from its artifacts as they are right now (any of them may be missing)."""
    from patchflow.operators.rollout import plan_targets

    folder = run_folder(artifacts, dag_id, run_id)
    plan, _ = _read(folder / "plan.json")
    ledgers: dict[str, Any] = {}
    for package in PACKAGES:
        ledger, problem = _read(ledger_path(folder, package.key))
        ledgers[package.key] = ledger if ledger is not None else (problem or None)
    return build_board(
        inventory_present=(folder / "inventory.json").exists(),
        plan=plan if isinstance(plan, dict) else None,
        ledgers=ledgers,
        targets=plan_targets,
        now=now,
        started_at=facts.start_date if facts else None,
        ended_at=facts.end_date if facts else None,
    )


def quoted(run_id: str) -> str:
    """A run id as one URL path segment (run ids carry ``:``, ``+`` and maybe ``/``)."""
    return urllib.parse.quote(run_id, safe="")


@dataclass(frozen=True)
class Links:
    """Where the pages of one run are, from the app's mount point (``request.scope['root_path']``)."""

    root: str
    """The reports app, e.g. ``/patchflow``."""
    airflow: str
    """Airflow's own root (where ``/api/v2`` is)."""
    dag_id: str
    run_id: str

    def page(self, kind: str) -> str:
        return f"{self.root}/{kind}/{quoted(self.dag_id)}/{quoted(self.run_id)}"

    @property
    def board(self) -> str:
        return self.page("board")

    @property
    def board_part(self) -> str:
        return self.board + "?part=board"

    @property
    def rerun(self) -> str:
        return self.page("rerun")

    @property
    def report(self) -> str:
        return f"{self.root}/runs/{quoted(self.run_id)}/report.html"

    @property
    def trigger_api(self) -> str:
        return f"{self.airflow}/api/v2/dags/{quoted(self.dag_id)}/dagRuns"


def links_for(root_path: str, mount: str, dag_id: str, run_id: str) -> Links:
    root = root_path.rstrip("/")
    airflow = root[: -len(mount)] if mount and root.endswith(mount) else root
    return Links(root=root, airflow=airflow, dag_id=dag_id, run_id=run_id)


@dataclass(frozen=True)
class BoardPage:
    """The view model of the board template: the read model plus the words and links around it."""

    board: Board
    dag_id: str
    run_id: str
    facts: RunFacts | None
    links: Links
    sealed: bool
    now: datetime

    @property
    def live(self) -> bool:
        """Still changing: keep refreshing."""
        return not self.sealed and not (self.facts and self.facts.final)

    @property
    def stage_text(self) -> str:
        if (
            self.facts
            and self.facts.final
            and self.board.stage in (Stage.WAITING_FOR_INVENTORY, Stage.WAITING_FOR_PLAN)
        ):
            return (
                f"The run ended ({self.run_state}) before it had a plan: "
                "see the preflight and inventory task logs."
            )
        if self.sealed:
            return "The audit has sealed this run's evidence pack."
        return STAGE_TEXT[self.board.stage]

    @property
    def run_state(self) -> str:
        return self.facts.state.value if self.facts and self.facts.state else "unknown"

    @property
    def totals(self) -> list[tuple[BoardStatus, str, int]]:
        counts = self.board.counts
        return [(status, STATUS_LABELS[status], counts[status]) for status in BoardStatus]

    @property
    def elapsed(self) -> str:
        return duration_text(self.board.elapsed_seconds)

    @property
    def eta(self) -> str:
        """The estimate in words (only while something is still to go)."""
        remaining = self.board.remaining_seconds
        if self.board.stage is not Stage.ROLLING_OUT or not self.live:
            return ""
        if remaining is None:
            pending = [p.title for p in self.board.packages if p.remaining_seconds is None]
            if len(pending) == len(self.board.packages):
                return "estimated once the first servers have finished"
            # one package has finished servers, another not yet: say what is known and what is not
            waiting = f"{' and '.join(pending)}: estimated once its first servers have finished"
            return f"at least this left; {waiting}" if self.partial_eta else waiting
        if remaining == 0:
            return "any time now: the servers in flight already took longer than this run's mean"
        finish = utc_text(datetime.fromtimestamp(self.now.timestamp() + remaining, tz=self.now.tzinfo))
        return f"about {duration_text(remaining)} left (rollouts end ≈ {finish})"

    @property
    def partial_eta(self) -> float | None:
        """The longest estimate among the packages that have one, while another has none yet: a
        lower bound for the run (a person sees it instead of a bare "?")."""
        known = [p.remaining_seconds for p in self.board.packages if p.remaining_seconds is not None]
        return (max(known) or None) if known and self.board.remaining_seconds is None else None

    @property
    def eta_figure(self) -> str:
        if self.board.remaining_seconds:
            return self.duration(self.board.remaining_seconds)
        if self.partial_eta:
            return "≥ " + self.duration(self.partial_eta)
        return "?"

    @property
    def rerun(self) -> Rerun | None:
        """Offered once the run is over (``patch_fleet`` runs one at a time)."""
        if self.live:
            return None
        return rerun_for(self.dag_id, self.board.settings, [row.server_id for row in self.board.not_patched])

    def duration(self, seconds: float | None) -> str:
        return duration_text(seconds)

    @staticmethod
    def shown_rows(package: PackageBoard) -> list[ServerRow]:
        """Every server in plan order, or, past ``ROW_LIMIT``, the ones needing an eye first."""
        if len(package.rows) <= ROW_LIMIT:
            return package.rows
        return sorted(package.rows, key=lambda row: ROW_PRIORITY.index(row.status))[:ROW_LIMIT]

    @staticmethod
    def budget_percent(package: PackageBoard) -> int:
        """How much of the error budget is used, for the bar: 100 once exhausted."""
        if package.budget_exhausted:
            return 100
        if not package.max_errors:
            return 0
        return min(round(100 * package.budget_errors / package.max_errors), 100)

    def badge(self, state: str) -> Any:
        return state_badge(state)


@dataclass(frozen=True)
class RerunPage:
    """The "re-run what was not patched" page of a finished run."""

    dag_id: str
    run_id: str
    rerun: Rerun | None
    servers: list[dict[str, str]]
    """``server_id``, ``name``, ``state``, ``reason`` of each server the new run retries."""
    links: Links
    source: str
    """Where the list comes from: the sealed audit or the live ledgers."""


def rows_to_retry(audit: dict[str, Any]) -> list[dict[str, str]]:
    """The sealed audit's servers that a new run should retry (failed, timed out, not attempted)."""
    return [
        {
            "server_id": str(row.get("server_id")),
            "name": str(row.get("server_name") or ""),
            "state": str(row.get("state")),
            "reason": str(row.get("reason") or ""),
        }
        for row in audit.get("servers") or []
        if row.get("state") in PROBLEM_STATES
    ]


def now() -> datetime:
    return utcnow()
