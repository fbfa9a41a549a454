"""The contract between the rollout (worker) and the completion trigger (triggerer).

``ServerWatch`` is what the rollout asks the trigger to watch for one server; ``Outcome`` is
what the trigger reports back. Both cross a process boundary as JSON (trigger kwargs, event
payload), hence ``as_dict``/``from_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from include.patching.executions import attempt_count, installed_per_initiation
from include.patching.read_schedule import Initiation


class WatchState(StrEnum):
    """How the trigger saw one server end."""

    COMPLETED = "completed"
    """The execution our request created reached ``completed``."""
    JOB_FAILED = "failed"
    """The queue job of the request ended ``failed``/``unknown``."""
    TIMED_OUT = "timed_out"
    """The deadline passed before the execution completed."""
    NO_EXECUTION = "no_execution"
    """The request's answer was lost and no new execution appeared by the deadline."""


@dataclass(frozen=True)
class SeenExecution:
    """A pending execution as the last summary read showed it, handed from trigger to trigger
    (through the ledger) so that the read due at its possible completion can be the detail."""

    execution_id: str
    start_time: str
    """The execution's ``start_time`` (API clock)."""
    initiations: tuple[Initiation, ...]
    last_scan: bool
    """It was likely in its last scan (``read_schedule.in_last_scan``): the next read, due at that
    scan's end, is the detail, and the refill may wait for it (``Cadence.hold``)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "start_time": self.start_time,
            "initiations": [[i.start, i.end, i.installed] for i in self.initiations],
            "last_scan": self.last_scan,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeenExecution:
        return cls(
            execution_id=str(data["execution_id"]),
            start_time=str(data["start_time"]),
            initiations=tuple(
                Initiation(float(start), None if end is None else float(end), None if n is None else int(n))
                for start, end, n in data.get("initiations") or []
            ),
            last_scan=bool(data.get("last_scan")),
        )


@dataclass(frozen=True)
class ServerWatch:
    """One server the trigger must follow until its outcome.

    ``job_id`` is None when the Execute Package answer was lost: then only the summary is
    read. ``known_executions`` and ``not_before`` tell our execution from the server's
    others; both None marks a legacy ledger entry (see ``executions.select_execution``).
    """

    server_id: str
    job_id: str | None
    requested_at: str
    deadline: str
    known_executions: tuple[str, ...] | None
    quiet_seconds: float = 0.0
    not_before: str | None = None
    """The patching service's time before which our execution cannot have started (API clock)."""
    execution_id: str | None = None
    """Already identified (adopted after a restart): followed directly."""
    health: dict[str, Any] | None = None
    """``HealthSpec.as_dict()``: check the server's health once its execution completed."""
    job_succeeded: bool = False
    """An earlier trigger saw the queue job succeed: only the execution is left to read."""
    polled_at: str | None = None
    """When an earlier trigger last read the server's execution: the next trigger keeps its
    polling cadence from there (a poll that fell due while the task was refilling goes at once)."""
    next_read_at: str | None = None
    """When an earlier trigger planned the next read of the execution from what it showed
    (``include.patching.read_schedule``): the next trigger reads then, not on the back-off."""
    seen: dict[str, Any] | None = None
    """``SeenExecution.as_dict()`` of the execution as an earlier trigger last saw it pending."""

    def as_dict(self) -> dict[str, Any]:
        return (
            {
                "server_id": self.server_id,
                "job_id": self.job_id,
                "requested_at": self.requested_at,
                "deadline": self.deadline,
                "known_executions": None if self.known_executions is None else list(self.known_executions),
                "quiet_seconds": self.quiet_seconds,
                "execution_id": self.execution_id,
                "job_succeeded": self.job_succeeded,
            }
            | ({} if self.not_before is None else {"not_before": self.not_before})
            | ({} if self.health is None else {"health": dict(self.health)})
            | ({} if self.polled_at is None else {"polled_at": self.polled_at})
            | ({} if self.next_read_at is None else {"next_read_at": self.next_read_at})
            | ({} if self.seen is None else {"seen": dict(self.seen)})
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerWatch:
        known = data.get("known_executions")
        return cls(
            server_id=data["server_id"],
            job_id=data.get("job_id"),
            requested_at=data["requested_at"],
            deadline=data["deadline"],
            known_executions=None if known is None else tuple(known),
            quiet_seconds=float(data.get("quiet_seconds") or 0.0),
            not_before=data.get("not_before"),
            execution_id=data.get("execution_id"),
            health=data.get("health"),
            job_succeeded=bool(data.get("job_succeeded")),
            polled_at=data.get("polled_at"),
            next_read_at=data.get("next_read_at"),
            seen=data.get("seen"),
        )


@dataclass(frozen=True)
class ObservedExecution:
    """What the summary said about the execution when the trigger saw it complete."""

    execution_id: str
    status: str | None
    start_time: str | None
    end_time: str | None
    attempts: int
    """Initiations listed in ``init_messages`` (the service's apply attempts)."""
    installed: int
    """Updates the initiations' end messages say were installed."""

    @classmethod
    def from_summary(cls, execution: dict[str, Any]) -> ObservedExecution:
        return cls(
            execution_id=execution["execution_id"],
            status=execution.get("status"),
            start_time=execution.get("start_time") or None,
            end_time=execution.get("end_time") or None,
            attempts=attempt_count(execution),
            installed=sum(c or 0 for c in installed_per_initiation(execution)),
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObservedExecution:
        return cls(
            execution_id=data["execution_id"],
            status=data.get("status"),
            start_time=data.get("start_time"),
            end_time=data.get("end_time"),
            attempts=int(data.get("attempts") or 0),
            installed=int(data.get("installed") or 0),
        )


@dataclass(frozen=True)
class Outcome:
    """The trigger's report for one server."""

    state: WatchState
    reason: str
    job_id: str | None
    job_status: str | None
    execution_id: str | None
    observed_at: str
    execution: ObservedExecution | None = None
    health: dict[str, Any] | None = None
    """``HealthResult.as_dict()`` of the post-patch check (None: none was asked for)."""
    timing: dict[str, Any] | None = None
    """``read_schedule.ExecutionShape.as_dict()`` of the completed execution (None: unreadable)."""
    patches: list[dict[str, Any]] | None = None
    """``executions.patch_rows`` of the detail, when the read that saw the completion was the
    detail itself (None: the rollout reads it)."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state.value,
            "reason": self.reason,
            "job_id": self.job_id,
            "job_status": self.job_status,
            "execution_id": self.execution_id,
            "observed_at": self.observed_at,
        }
        if self.execution is not None:
            out["execution"] = self.execution.as_dict()
        if self.health is not None:
            out["health"] = dict(self.health)
        if self.timing is not None:
            out["timing"] = dict(self.timing)
        if self.patches is not None:
            out["patches"] = [dict(p) for p in self.patches]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        execution = data.get("execution")
        return cls(
            state=WatchState(data["state"]),
            reason=data.get("reason") or "",
            job_id=data.get("job_id"),
            job_status=data.get("job_status"),
            execution_id=data.get("execution_id"),
            observed_at=data.get("observed_at") or "",
            execution=ObservedExecution.from_dict(execution) if execution else None,
            health=data.get("health"),
            timing=data.get("timing"),
            patches=data.get("patches"),
        )
