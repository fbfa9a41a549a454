"""Deferrable wait for many servers' patch executions at once.

For each watched server: first the queue job of its Execute Package request (shared by the
batch) must reach ``succeeded`` (``failed``/``unknown`` end the server as failed), then the
server's newest patching execution that started at/after the request time (minus an allowed
clock skew) must reach ``completed``: the execution, not the queue job, says when patching
is over (I4). Each server has an absolute deadline and ends ``timed_out`` there (I7).

Servers without a job id (their submit answer was lost) skip the job phase; if no execution
shows up within ``not_found_grace`` seconds they end ``not_found`` so the operator can decide
whether resubmitting is safe.

Polling starts quick and backs off (x``backoff`` up to ``max_poll_interval``); every cycle
sends one request per distinct job id and per server, at most ``max_parallel`` at a time.
The trigger fires once at least one server has an outcome and either nothing is left to
watch or ``batch_window`` seconds have passed since the first outcome, so the operator can
refill freed slots promptly without one resume per server. ``run()`` only sends GETs and
logs in itself; nothing secret is in its kwargs (I6). It may run twice (HA, restart): it
carries no state beyond its kwargs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from include.patching import api_shapes as shapes
from include.patching.clc_errors import ClcApiError, ClcError


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Watch:
    server_id: str
    job_id: str | None
    requested_at: datetime
    deadline: datetime
    job_done: bool = False
    job_status: str | None = None
    execution_id: str | None = None
    known_executions: tuple[str, ...] = ()
    quiet_seconds: float = 0.0
    next_poll: datetime | None = None


def next_checkpoint(age: float, first: float, factor: float, cap: float) -> float:
    """The first poll time (seconds after the request) strictly after ``age``.

    Checkpoints grow geometrically from ``first`` (each gap ``factor - 1`` times the age so far,
    between ``first`` and ``cap``). Because they depend only on the server's age, a trigger that
    is re-created on every resume of the rollout continues the schedule instead of starting it
    over at the fastest rate: requests per server stay proportional to log(duration) + duration/cap.
    """
    checkpoint = first
    while checkpoint <= age:
        checkpoint += min(max(checkpoint * (factor - 1.0), first), cap)
    return checkpoint


class PatchCompletionTrigger(BaseTrigger):
    """Wait until watched servers' patch executions complete, fail or time out.

    :param servers: ``[{"server_id", "job_id" (or None), "requested_at", "deadline"}]``,
        times as ISO-8601 UTC strings.
    """

    def __init__(
        self,
        *,
        servers: list[dict[str, Any]],
        alias: str,
        clc_conn_id: str = "clc_default",
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        backoff: float = 1.5,
        batch_window: float = 30.0,
        clock_skew: float = 120.0,
        not_found_grace: float = 180.0,
        max_parallel: int = 8,
    ) -> None:
        super().__init__()
        if not servers:
            raise ValueError("PatchCompletionTrigger needs at least one server to watch")
        self.servers = [dict(s) for s in servers]
        self.alias = alias
        self.clc_conn_id = clc_conn_id
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.backoff = backoff
        self.batch_window = batch_window
        self.clock_skew = clock_skew
        self.not_found_grace = not_found_grace
        self.max_parallel = max_parallel

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "servers": self.servers,
                "alias": self.alias,
                "clc_conn_id": self.clc_conn_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "backoff": self.backoff,
                "batch_window": self.batch_window,
                "clock_skew": self.clock_skew,
                "not_found_grace": self.not_found_grace,
                "max_parallel": self.max_parallel,
            },
        )

    def _hook(self) -> Any:
        from patchflow.hooks.clc_async import ClcAsyncHook

        return ClcAsyncHook(self.clc_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watches = {
            s["server_id"]: _Watch(
                server_id=s["server_id"],
                job_id=s.get("job_id"),
                requested_at=_parse(s["requested_at"]),
                deadline=_parse(s["deadline"]),
                known_executions=tuple(s.get("known_executions") or ()),
                quiet_seconds=float(s.get("quiet_seconds") or 0.0),
            )
            for s in self.servers
        }
        outcomes: dict[str, dict[str, Any]] = {}
        first_outcome: float | None = None
        for w in watches.values():
            self._schedule(w)
        async with self._hook().client() as api:
            while True:
                now = _now()
                due = [
                    w
                    for w in watches.values()
                    if w.server_id not in outcomes and (w.next_poll <= now or w.deadline <= now)
                ]
                if due:
                    await self._cycle(api, due, outcomes)
                    for w in due:
                        self._schedule(w)
                pending = [w for w in watches.values() if w.server_id not in outcomes]
                if outcomes and first_outcome is None:
                    first_outcome = time.monotonic()
                waited = time.monotonic() - first_outcome if first_outcome is not None else 0.0
                if outcomes and (not pending or waited >= self.batch_window):
                    self.log.info("%d server(s) finished, %d still watched", len(outcomes), len(pending))
                    still = sorted(w.server_id for w in pending)
                    yield TriggerEvent({"outcomes": outcomes, "pending": still})
                    return
                nearest = min(min(w.next_poll, w.deadline) for w in pending)
                pause = max((nearest - _now()).total_seconds(), 0.0) + 0.001
                if first_outcome is not None:
                    pause = min(pause, max(self.batch_window - waited, 0.0) + 0.001)
                await asyncio.sleep(pause)

    def _schedule(self, w: _Watch) -> None:
        age = (_now() - w.requested_at).total_seconds()
        offset = next_checkpoint(age, self.poll_interval, self.backoff, self.max_poll_interval)
        if w.quiet_seconds and (w.job_done or not w.job_id):
            if age < w.quiet_seconds:
                # the next poll reads the execution: pointless before the rollout's quiet period
                offset = max(offset, w.quiet_seconds)
            else:
                # past it, completions are due: poll densely at first, backing off again
                gap = 0.1 * w.quiet_seconds + (self.backoff - 1.0) * (age - w.quiet_seconds)
                offset = min(offset, age + min(max(gap, self.poll_interval), self.max_poll_interval))
        w.next_poll = w.requested_at + timedelta(seconds=offset)

    async def _cycle(self, api: Any, watches: list[_Watch], outcomes: dict[str, dict[str, Any]]) -> None:
        now = _now()
        for w in watches:
            if now >= w.deadline:
                outcomes[w.server_id] = self._outcome(
                    w, "timed_out", f"no completed patch execution by the deadline {shapes.iso(w.deadline)}"
                )
        live = [w for w in watches if w.server_id not in outcomes]
        limit = asyncio.Semaphore(max(1, self.max_parallel))

        async def guarded(coro: Any) -> Any:
            async with limit:
                try:
                    return await coro
                except ClcError as exc:
                    return exc

        # Phase 1: one status request per distinct job still running.
        jobs = sorted({w.job_id for w in live if w.job_id and not w.job_done})
        statuses = await asyncio.gather(*(guarded(api.get_queue_status(self.alias, j)) for j in jobs))
        for job_id, status in zip(jobs, statuses, strict=True):
            members = [w for w in live if w.job_id == job_id and not w.job_done]
            if isinstance(status, ClcApiError) and status.status is not None and 400 <= status.status < 500:
                self.log.warning("queue job %s unreadable (%s); reading executions instead", job_id, status)
                for w in members:
                    w.job_done, w.job_status = True, f"http_{status.status}"
                continue
            if isinstance(status, Exception):
                self.log.warning("queue job %s: %s (tolerated, polling again)", job_id, status)
                continue
            for w in members:
                w.job_status = status
                if status == shapes.QUEUE_SUCCEEDED:
                    w.job_done = True
                elif status in shapes.QUEUE_FAILED:
                    outcomes[w.server_id] = self._outcome(w, "failed", f"queue job {job_id} ended {status}")

        # Phase 2: one summary request per server whose job is done (or unknown).
        now = _now()
        readers = [
            w
            for w in live
            if w.server_id not in outcomes
            and (w.job_done or not w.job_id)
            and (now - w.requested_at).total_seconds() >= w.quiet_seconds
        ]
        summaries = await asyncio.gather(
            *(guarded(api.get_patch_summary(self.alias, w.server_id)) for w in readers)
        )
        now = _now()
        for w, summary in zip(readers, summaries, strict=True):
            if isinstance(summary, Exception):
                self.log.warning("patch summary of %s: %s (tolerated, polling again)", w.server_id, summary)
                continue
            execution = shapes.select_execution(summary, w.requested_at, self.clock_skew, w.known_executions)
            if execution is None:
                waited = (now - w.requested_at).total_seconds()
                if not w.job_id and waited >= self.not_found_grace:
                    outcomes[w.server_id] = self._outcome(
                        w,
                        "not_found",
                        f"no execution started after the request within {waited:.0f}s",
                        pending_elsewhere=shapes.has_pending(summary),
                    )
                continue
            w.execution_id = execution["execution_id"]
            if execution.get("status") == "completed":
                outcomes[w.server_id] = self._outcome(w, "completed", "", execution=execution)

    @staticmethod
    def _outcome(
        w: _Watch,
        state: str,
        reason: str,
        *,
        execution: dict | None = None,
        pending_elsewhere: bool | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": state,
            "reason": reason,
            "job_id": w.job_id,
            "job_status": w.job_status,
            "execution_id": w.execution_id,
            "observed_at": shapes.iso(_now()),
        }
        if execution is not None:
            out["execution"] = {
                "execution_id": execution["execution_id"],
                "status": execution.get("status"),
                "start_time": execution.get("start_time") or None,
                "end_time": execution.get("end_time") or None,
                "initiations": len(execution.get("init_messages") or []),
                "reboots": shapes.count_reboots(execution),
                "installed": sum(c or 0 for c in shapes.installed_per_initiation(execution)),
            }
        if pending_elsewhere is not None:
            out["pending_execution_exists"] = pending_elsewhere
        return out


def _parse(value: str) -> datetime:
    parsed = shapes.parse_time(value)
    if parsed is None:
        raise ValueError(f"not an ISO-8601 time: {value!r}")
    return parsed
