"""Deferrable wait for many servers' patch executions at once.

For each watched server: first the queue job of its Execute Package request (shared by the
batch) must reach ``succeeded`` (``failed``/``unknown`` end the server as failed), then the
execution our request created must reach ``completed``: the execution, not the queue job,
says when patching is over (I4). That execution is the newest one *not* listed on the server
right before the request (``known_executions``), or the newest the patching service dated at or
after a time its own clock showed before the request (``not_before``); our clock is never
compared with the API's, so one minutes or years away from ours changes nothing (I8). Each
server has an absolute deadline (our clock only) and ends ``timed_out`` there (I7).

Servers without a job id (the answer to their request was lost) skip the job phase and are
watched through the summary alone until an execution appears — however late the platform
starts it — or until their deadline, where they end ``no_execution``. The request is never
sent again (I1): that is the worker's rule, and this trigger only reads.

Polling starts quick and backs off (x``backoff`` up to ``max_poll_interval``); once the rollout
has learnt how its executions run (``cadence``, ``include.patching.read_schedule``), each read of
a pending execution plans the next one instead. Every cycle sends one request per distinct job id
and per server, at most ``max_parallel`` at a time.
The trigger fires once at least one server has an outcome and either nothing is left to
watch or ``batch_window`` seconds have passed since the first outcome, so the operator can
refill freed slots promptly without one resume per server; while servers wait for a slot the
rollout passes a window of 0 (``patchflow.waiting.refill_window``), so a completion is reported at
once — unless other servers' last scans end within a fifth of a scan (``Cadence.hold``): then
the event waits for their reads, and one Execute Package request refills all their slots; and a
lone completion waits up to ``refill_hold`` (half a scan, ``Cadence.pair_hold``) for a second.
``wait(api)`` is the same loop with any reader: ``run`` gives it the async client, the
rollout's ``deferrable=False`` loop the worker's hook. Timing defaults come from
``include.patching.tuning`` (scaled by ``[patchflow] time_scale``). ``run()`` only sends GETs
and logs in itself; nothing secret is in its kwargs (I6). It may run twice (HA, restart): it
carries no state beyond its kwargs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from include.clc import shapes
from include.clc.errors import ClcApiError, ClcError
from include.patching.executions import ExecutionStatus, patch_rows, select_execution
from include.patching.health import HealthResult, HealthSpec, check_once
from include.patching.read_schedule import (
    Cadence,
    ExecutionShape,
    Initiation,
    api_age,
    final_scan_confirmed,
    in_last_scan,
    initiations,
    next_read,
)
from include.patching.watch import ObservedExecution, Outcome, SeenExecution, ServerWatch, WatchState
from include.timefmt import parse_iso8601, utc_text


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
    known_executions: tuple[str, ...] | None = None
    not_before: datetime | None = None
    quiet_seconds: float = 0.0
    next_poll: datetime | None = None  # None until the trigger schedules the first poll
    health: HealthSpec | None = None
    completed: dict | None = None  # the completed execution, while its health is being checked
    health_tries: int = 0
    last_poll: datetime | None = None  # the last read of its execution (this trigger's or an earlier one's)
    next_read: datetime | None = None  # planned from what the execution showed (read_schedule)
    lag: float | None = None  # our seconds from the request to the execution's start (dated reads)
    first_dated: tuple[datetime, datetime] | None = None  # (ours, the API's) at the first dated read
    rate: float | None = None  # our seconds per API second, measured between dated reads
    seen: SeenExecution | None = None  # the execution as the last summary showed it, pending
    observed: ObservedExecution | None = None  # completed as the detail showed it (with ``seen``)
    shape: ExecutionShape | None = None
    patches: list[dict] | None = None  # the detail's rows, when the detail showed the completion

    def due_at(self) -> datetime:
        """The next poll or the deadline, whichever comes first; not scheduled yet: at once."""
        if self.next_poll is None:
            return self.requested_at
        if self.completed is not None:  # checking health: the deadline no longer applies
            return self.next_poll
        return min(self.next_poll, self.deadline)

    @classmethod
    def of(cls, spec: ServerWatch) -> _Watch:
        seen = SeenExecution.from_dict(spec.seen) if spec.seen else None
        return cls(
            server_id=spec.server_id,
            job_id=spec.job_id,
            requested_at=_parse(spec.requested_at),
            deadline=_parse(spec.deadline),
            # identified by an earlier trigger (``select_execution``), as the execution it saw
            execution_id=spec.execution_id or (seen.execution_id if seen else None),
            known_executions=spec.known_executions,
            not_before=_parse(spec.not_before) if spec.not_before else None,
            quiet_seconds=spec.quiet_seconds,
            health=HealthSpec.from_dict(spec.health) if spec.health else None,
            job_done=spec.job_succeeded,
            job_status=shapes.QUEUE_SUCCEEDED if spec.job_succeeded else None,
            last_poll=_parse(spec.polled_at) if spec.polled_at else None,
            next_read=_parse(spec.next_read_at) if spec.next_read_at else None,
            seen=seen,
        )

    @property
    def ending(self) -> bool:
        """The last read saw what is likely the last scan: the next read may see the end."""
        return self.seen is not None and self.seen.last_scan

    def identify(self, summary: list[dict]) -> dict | None:
        """This request's execution in a summary; once identified, always the same one."""
        if self.execution_id is not None:
            return next((e for e in summary if e["execution_id"] == self.execution_id), None)
        execution = select_execution(summary, self.known_executions, self.requested_at, self.not_before)
        if execution is not None:
            self.execution_id = execution["execution_id"]
        return execution


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


#: a planned read is never further away than this many ``max_poll_interval``s (a bad plan costs little)
PLAN_CAP = 5.0


def _tuned_scale() -> float:
    from patchflow.tuning import time_scale

    return time_scale()


def _tuned(name: str, explicit: float | None) -> float:
    from patchflow.tuning import setting

    return setting(name, explicit)


class PatchCompletionTrigger(BaseTrigger):
    """Wait until watched servers' patch executions complete, fail or time out.

    :param servers: ``ServerWatch.as_dict()`` items (times as ISO-8601 UTC strings).
    :param refill_hold: seconds a first outcome waits for a second before the event fires (servers
        wait for the freed slots: one Execute Package then refills two); 0: at once.
    :param poll_interval: / ``max_poll_interval`` / ``batch_window``: seconds; None takes the
        deployment's setting (``patchflow.tuning``).
    """

    def __init__(
        self,
        *,
        servers: list[dict[str, Any]],
        alias: str,
        clc_conn_id: str = "clc_default",
        poll_interval: float | None = None,
        max_poll_interval: float | None = None,
        backoff: float = 1.5,
        batch_window: float | None = None,
        max_parallel: int = 8,
        cadence: dict[str, Any] | None = None,
        refill_hold: float = 0.0,
    ) -> None:
        super().__init__()
        if not servers:
            raise ValueError("PatchCompletionTrigger needs at least one server to watch")
        self.servers = [ServerWatch.from_dict(s).as_dict() for s in servers]
        self.alias = alias
        self.clc_conn_id = clc_conn_id
        self.poll_interval = _tuned("poll_interval", poll_interval)
        self.max_poll_interval = _tuned("max_poll_interval", max_poll_interval)
        self.backoff = backoff
        self.batch_window = _tuned("batch_window", batch_window)
        self.max_parallel = max_parallel
        self.cadence = cadence
        self._cadence = Cadence.from_dict(cadence) if cadence else None
        self.refill_hold = refill_hold

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
                "max_parallel": self.max_parallel,
                "cadence": self.cadence,
                "refill_hold": self.refill_hold,
            },
        )

    def _hook(self) -> Any:
        from patchflow.hooks.clc_async import ClcAsyncHook

        return ClcAsyncHook(self.clc_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async with self._hook().client() as api:
            yield TriggerEvent(await self.wait(api))

    async def wait(self, api: Any) -> dict[str, Any]:
        """Poll with ``api`` until the event is due; the event's payload.

        ``run`` in the triggerer; the rollout's ``deferrable=False`` loop in the worker (the same
        rules, deadlines and batch window, with the worker's reads).
        """
        watches = {s["server_id"]: _Watch.of(ServerWatch.from_dict(s)) for s in self.servers}
        outcomes: dict[str, dict[str, Any]] = {}
        first_outcome: float | None = None
        window = hold = self.batch_window
        for w in watches.values():
            self._schedule(w)
        while True:
            now = _now()
            due = [w for w in watches.values() if w.server_id not in outcomes and w.due_at() <= now]
            if due:
                await self._cycle(api, due, outcomes)
                for w in due:
                    w.last_poll = now  # read this cycle (job or execution): the cadence goes on from here
                    self._schedule(w)
            pending = [w for w in watches.values() if w.server_id not in outcomes]
            if outcomes and first_outcome is None:
                first_outcome = time.monotonic()
                hold = max(self.batch_window, self._hold(pending))
            # a lone outcome waits a little for a second: one Execute Package for both slots
            window = max(hold, self.refill_hold) if len(outcomes) == 1 else hold
            waited = time.monotonic() - first_outcome if first_outcome is not None else 0.0
            if outcomes and (not pending or waited >= window):
                self.log.info(
                    "%d server(s) finished (%s), %d still watched",
                    len(outcomes),
                    _finished(outcomes),
                    len(pending),
                )
                # jobs seen succeeding: the next trigger does not ask for them again
                jobs = {
                    w.job_id: w.job_status
                    for w in pending
                    if w.job_id and w.job_status == shapes.QUEUE_SUCCEEDED
                }
                # when each one's execution was last read: the next trigger keeps the cadence
                polled = {w.server_id: utc_text(w.last_poll) for w in pending if w.last_poll is not None}
                # and when it was planned to be read next: the next trigger reads then
                planned = {w.server_id: w.next_read.isoformat() for w in pending if w.next_read is not None}
                # and what it showed: the read due at its possible completion can be the detail
                seen = {w.server_id: w.seen.as_dict() for w in pending if w.seen is not None}
                return {
                    "outcomes": outcomes,
                    "pending": sorted(w.server_id for w in pending),
                    "jobs": jobs,
                    "polled": polled,
                    "next_reads": planned,
                    "seen": seen,
                }
            nearest = min(w.due_at() for w in pending)
            pause = max((nearest - _now()).total_seconds(), 0.0) + 0.001
            if first_outcome is not None:
                pause = min(pause, max(window - waited, 0.0) + 0.001)
            await asyncio.sleep(pause)

    def _hold(self, pending: list[_Watch]) -> float:
        """Seconds to wait after the first outcome for servers whose last scan ends that soon
        (``Cadence.hold``), so their slots are refilled by the same request; 0: none is."""
        if self._cadence is None:
            return 0.0
        now = _now()
        limit = self._cadence.hold()
        soon = [
            (w.due_at() - now).total_seconds()
            for w in pending
            if w.ending and (w.due_at() - now).total_seconds() <= limit
        ]
        return max(soon) + 0.001 if soon else 0.0

    async def check(self, api: Any) -> dict[str, dict[str, Any]]:
        """One poll of every watched server — one cycle of ``run`` — with ``api`` as the reader.

        For a sensor that polls in the worker (``deferrable=False``): the same queue-job and
        execution rules and the same deadlines, without the triggerer.
        """
        watches = [_Watch.of(ServerWatch.from_dict(s)) for s in self.servers]
        outcomes: dict[str, dict[str, Any]] = {}
        await self._cycle(api, watches, outcomes)
        return outcomes

    def _schedule(self, w: _Watch) -> None:
        if w.completed is not None and w.health is not None:  # health check: its own pace
            w.next_poll = _now() + timedelta(seconds=w.health.interval if w.health_tries else 0.0)
            return
        # From the last read of the execution: a trigger re-created on every resume of the rollout
        # polls at once a server whose next read fell due while no trigger was running (the task
        # was refilling), instead of skipping that read and seeing its completion a cycle later.
        now = _now()
        # Never read yet: from its request, so a read already due goes now. Each trigger ends at its
        # first cycle with an outcome; scheduled from "now", a server would never be due in that
        # first cycle and, while completions keep coming, never read (seen: minutes late).
        base = w.last_poll if w.last_poll is not None else w.requested_at
        base = min(base, now)
        age = (base - w.requested_at).total_seconds()
        offset = next_checkpoint(age, self.poll_interval, self.backoff, self.max_poll_interval)
        if w.quiet_seconds:  # learnt: the summary is read first (``_summary_first``), job or not
            if age < w.quiet_seconds:
                # the next poll reads the execution: pointless before the rollout's quiet period
                offset = max(offset, w.quiet_seconds)
            else:
                # past it, completions are due: poll densely at first, backing off again
                gap = 0.1 * w.quiet_seconds + (self.backoff - 1.0) * (age - w.quiet_seconds)
                offset = min(offset, age + min(max(gap, self.poll_interval), self.max_poll_interval))
        w.next_poll = w.requested_at + timedelta(seconds=offset)
        if self._cadence is not None and w.next_read is not None:
            # planned from what the execution showed; bounded, should the plan be far off
            w.next_poll = min(w.next_read, now + timedelta(seconds=PLAN_CAP * self.max_poll_interval))

    async def _cycle(self, api: Any, watches: list[_Watch], outcomes: dict[str, dict[str, Any]]) -> None:
        limit = asyncio.Semaphore(max(1, self.max_parallel))

        async def guarded(coro: Any) -> Any:
            async with limit:
                try:
                    return await coro
                except ClcError as exc:
                    return exc

        now = _now()
        first = [w for w in watches if self._summary_first(w, now)]
        await self._poll_jobs(api, [w for w in watches if w not in first], outcomes, guarded)
        await self._poll_executions(api, watches, outcomes, guarded)
        # summary first and no execution yet: only now does the queue job's status matter
        unlisted = [w for w in first if w.execution_id is None]
        if unlisted:
            await self._poll_jobs(api, unlisted, outcomes, guarded)
        await self._check_health(api, watches, outcomes, guarded)
        now = _now()
        for w in watches:
            if w.server_id not in outcomes and w.completed is None and now >= w.deadline:
                outcomes[w.server_id] = self._deadline_outcome(w)

    @staticmethod
    def _summary_first(w: _Watch, now: datetime) -> bool:
        """Past a learnt quiet period the execution is read before the queue job: once it is
        listed, the job (which may say ``succeeded`` long before the end, I4) has nothing left to
        tell, so a server refilled on its own costs no job poll. Without a quiet period (the
        first servers of a rollout) the job is read first, as its failure ends the server early."""
        return (
            bool(w.quiet_seconds)
            and bool(w.job_id)
            and not w.job_done
            and (now - w.requested_at).total_seconds() >= w.quiet_seconds
        )

    async def _poll_jobs(self, api: Any, watches: list[_Watch], outcomes: dict, guarded: Any) -> None:
        """One status request per distinct job still running."""
        live = [w for w in watches if w.server_id not in outcomes]
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
                    outcomes[w.server_id] = self._outcome(
                        w, WatchState.JOB_FAILED, f"queue job {job_id} ended {status}"
                    )

    async def _poll_executions(self, api: Any, watches: list[_Watch], outcomes: dict, guarded: Any) -> None:
        """One summary request per server whose job is done (or unknown); at the deadline, a last one."""
        now = _now()
        readers = [
            w
            for w in watches
            if w.server_id not in outcomes
            and w.completed is None
            and (w.job_done or not w.job_id or self._summary_first(w, now))
            and ((now - w.requested_at).total_seconds() >= w.quiet_seconds or now >= w.deadline)
        ]
        details = [w for w in readers if self._reads_detail(api, w)]
        readers = [w for w in readers if w not in details]
        if details:
            await self._poll_details(api, details, outcomes, guarded)
        answers = await asyncio.gather(*(guarded(self._read_summary(api, w.server_id)) for w in readers))
        for w, answer in zip(readers, answers, strict=True):
            w.last_poll = now
            if isinstance(answer, Exception):
                self.log.warning("patch summary of %s: %s (tolerated, polling again)", w.server_id, answer)
                w.next_read = None  # back to the back-off until a read succeeds
                continue
            summary, api_now, answered = answer
            execution = w.identify(summary)
            if execution is not None and w.job_id and not w.job_done:
                w.job_done = True  # the execution exists: its job's status no longer matters
            self._plan(w, execution, api_now, answered)
            if execution is not None and execution.get("status") == ExecutionStatus.COMPLETED:
                if w.health is not None:
                    w.completed = execution  # reported once its health is known (_check_health)
                    continue
                outcomes[w.server_id] = self._outcome(w, WatchState.COMPLETED, "", execution=execution)

    def _reads_detail(self, api: Any, w: _Watch) -> bool:
        """Read the detail instead of the summary: the read is due at the end of a scan seen
        running, when the execution completes if that scan finds nothing, and a completed detail
        is then all the rollout needs (one read, not two)."""
        return (
            w.seen is not None
            and w.seen.last_scan
            and w.execution_id == w.seen.execution_id
            and hasattr(api, "get_patch_detail_dated")
        )

    async def _poll_details(self, api: Any, watches: list[_Watch], outcomes: dict, guarded: Any) -> None:
        """One detail request per server whose last scan is due to end (``in_last_scan``). Completed,
        and the last summary's scan confirmed the last (``final_scan_confirmed``): reported with its
        patches. Completed otherwise: the summary is read at once for the initiations. Pending: the
        plan goes on from the last summary, and the next read is the summary again."""
        answers = await asyncio.gather(
            *(
                guarded(api.get_patch_detail_dated(self.alias, w.server_id, str(w.execution_id)))
                for w in watches
            )
        )
        for w, answer in zip(watches, answers, strict=True):
            seen = w.seen
            assert seen is not None
            w.seen = replace(seen, last_scan=False)  # whatever it says, the summary is next
            if isinstance(answer, Exception):
                self.log.warning("patch detail of %s: %s (tolerated, polling again)", w.server_id, answer)
                w.next_read = None
                continue
            detail, api_now = answer
            answered = _now()
            inits = list(seen.initiations)
            start = parse_iso8601(seen.start_time)
            end = parse_iso8601(detail.get("end_time") or "")
            completed = detail.get("status") == ExecutionStatus.COMPLETED
            if completed and start and end and final_scan_confirmed(inits, detail, start):
                if api_now is not None:
                    self._measure_rate(w, answered, api_now)
                self._completed_by_detail(w, seen, detail, (end - start).total_seconds())
                if w.health is None:
                    outcomes[w.server_id] = self._outcome(w, WatchState.COMPLETED, "")
                continue
            if completed:  # more initiations than the summary showed: it tells how many
                w.patches = patch_rows(detail)  # the rollout need not read the detail again
                w.next_read = answered
                continue
            # pending: the plan goes on from what the summary showed, aged to this answer
            self._follow(w, seen.execution_id, seen.start_time, inits, api_now, answered)

    def _completed_by_detail(self, w: _Watch, seen: SeenExecution, detail: dict, end: float) -> None:
        """Record the completion the detail showed, with the last summary's initiations (the
        last of them the scan that found nothing, ``final_scan_confirmed``)."""
        inits = list(seen.initiations)
        w.observed = ObservedExecution(
            execution_id=seen.execution_id,
            status=ExecutionStatus.COMPLETED,
            start_time=detail.get("start_time") or seen.start_time or None,
            end_time=detail.get("end_time") or None,
            attempts=len(inits),
            installed=sum(i.installed or 0 for i in inits),
        )
        w.shape = ExecutionShape.after_detail(inits, end, start_lag=w.lag, rate=w.rate)
        w.patches = patch_rows(detail)
        w.completed = {"execution_id": seen.execution_id}  # for the health check (``observed`` reports)

    async def _read_summary(self, api: Any, server_id: str) -> tuple[list[dict], datetime | None, datetime]:
        """The summary, the API's clock when it answered (None: a reader without dates) and ours."""
        dated = getattr(api, "get_patch_summary_dated", None)
        if dated is None:  # e.g. a test double: the plan falls back to the request's age
            return await api.get_patch_summary(self.alias, server_id), None, _now()
        summary, api_now = await dated(self.alias, server_id)
        return summary, api_now, _now()

    def _plan(self, w: _Watch, execution: dict | None, api_now: datetime | None, answered: datetime) -> None:
        """After a read: when the execution could first have completed (``read_schedule``)."""
        if execution is None:
            w.next_read, w.seen = None, None  # not listed yet: the back-off reads until it is
            return
        age = api_age(execution, api_now)
        if api_now is not None:
            self._measure_rate(w, answered, api_now)
        if age is not None and w.lag is None:
            rate = w.rate or (self._cadence.rate if self._cadence is not None else _tuned_scale())
            w.lag = max((answered - w.requested_at).total_seconds() - age * rate, 0.0)
        if self._cadence is None or execution.get("status") == ExecutionStatus.COMPLETED:
            return
        start = str(execution.get("start_time") or "")
        self._follow(w, str(execution["execution_id"]), start, initiations(execution), api_now, answered)

    def _follow(
        self,
        w: _Watch,
        execution_id: str,
        start_time: str,
        inits: list[Initiation],
        api_now: datetime | None,
        answered: datetime,
    ) -> None:
        """Plan the next read of a pending execution from its initiations as last seen, aged to
        the answer at ``answered`` (``read_schedule.next_read``), and remember what was seen."""
        assert self._cadence is not None
        age = api_age({"start_time": start_time}, api_now)
        if age is None:  # no Date header: the request's age, less the learnt start lag
            elapsed = (answered - w.requested_at).total_seconds() - self._cadence.start_lag
            age = max(elapsed, 0.0) / self._cadence.rate
        w.next_read = next_read(self._cadence, inits, answered, age, min_gap=self.poll_interval)
        last_scan = in_last_scan(self._cadence, inits, age)
        w.seen = SeenExecution(execution_id, start_time, tuple(inits), last_scan)

    @staticmethod
    def _measure_rate(w: _Watch, answered: datetime, api_now: datetime) -> None:
        """Our seconds per API second from two dated reads far enough apart (``Date`` has whole
        seconds): the plan then needs no assumption about how fast the API's clock runs."""
        if w.first_dated is None:
            w.first_dated = (answered, api_now)
            return
        ours, api = answered - w.first_dated[0], api_now - w.first_dated[1]
        if api.total_seconds() >= 20:
            w.rate = ours.total_seconds() / api.total_seconds()

    async def _check_health(self, api: Any, watches: list[_Watch], outcomes: dict, guarded: Any) -> None:
        """One try of the post-patch health check (``include.patching.health``) per completed server.

        Healthy: reported at once. Not healthy: tried again after the spec's interval until its
        tries are used up, then reported with the last reason (the rollout ends it ``unhealthy``).
        The probe goes out on a session of its own, without the CLC token (I6).
        """
        checking = [w for w in watches if w.completed is not None and w.server_id not in outcomes]
        if not checking:
            return
        import aiohttp

        servers = await asyncio.gather(*(guarded(api.get_server(self.alias, w.server_id)) for w in checking))
        async with aiohttp.ClientSession() as session:
            problems = await asyncio.gather(
                *(self._health_try(w, server, session) for w, server in zip(checking, servers, strict=True))
            )
        for w, problem in zip(checking, problems, strict=True):
            assert w.health is not None and w.completed is not None
            w.health_tries += 1
            if problem is None:
                result = HealthResult(True, f"healthy after {w.health_tries} check(s)")
            elif w.health_tries >= w.health.retries:
                result = HealthResult(False, f"not healthy after {w.health_tries} check(s): {problem}")
            else:
                self.log.info(
                    "health of %s: %s (try %d of %d)", w.server_id, problem, w.health_tries, w.health.retries
                )
                continue
            outcomes[w.server_id] = self._outcome(
                w, WatchState.COMPLETED, "", execution=w.completed, health=result.as_dict()
            )

    @staticmethod
    async def _health_try(w: _Watch, server: Any, session: Any) -> str | None:
        assert w.health is not None
        if isinstance(server, Exception):
            return f"server details unreadable: {server}"
        return await check_once(server, w.health, session)

    def _deadline_outcome(self, w: _Watch) -> dict[str, Any]:
        by = utc_text(w.deadline)
        if w.job_id is None and w.execution_id is None:
            return self._outcome(
                w,
                WatchState.NO_EXECUTION,
                f"the answer to the Execute Package request was lost and no new execution appeared "
                f"on the server by the deadline {by}; the request was not sent again (exactly once)",
            )
        if w.execution_id is None:
            return self._outcome(w, WatchState.TIMED_OUT, f"no execution had started by the deadline {by}")
        return self._outcome(
            w, WatchState.TIMED_OUT, f"execution {w.execution_id} had not completed by the deadline {by}"
        )

    @staticmethod
    def _outcome(
        w: _Watch,
        state: WatchState,
        reason: str,
        *,
        execution: dict | None = None,
        health: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The server's report; a completion seen in the detail carries what it showed (``observed``)."""
        observed: ObservedExecution | None
        if w.observed is not None:
            observed, timing = w.observed, (w.shape.as_dict() if w.shape is not None else None)
        else:
            observed = ObservedExecution.from_summary(execution) if execution is not None else None
            timing = _timing(execution, w.lag, w.rate)
        return Outcome(
            state=state,
            reason=reason,
            job_id=w.job_id,
            job_status=w.job_status,
            execution_id=w.execution_id,
            observed_at=utc_text(_now()),
            execution=observed,
            health=health,
            timing=timing,
            patches=w.patches,
        ).as_dict()


def _timing(execution: dict | None, lag: float | None, rate: float | None) -> dict[str, Any] | None:
    """What a completed execution teaches the read schedule (None: not completed or unreadable)."""
    if execution is None or execution.get("status") != ExecutionStatus.COMPLETED:
        return None
    shape = ExecutionShape.of(execution, start_lag=lag, rate=rate)
    return None if shape is None else shape.as_dict()


def _finished(outcomes: dict[str, dict[str, Any]], limit: int = 10) -> str:
    """``va1x: completed, va1y: job_failed, … +3`` for the log line of an event."""
    shown = [f"{sid}: {outcome.get('state')}" for sid, outcome in sorted(outcomes.items())[:limit]]
    return ", ".join(shown) + (f", … +{len(outcomes) - limit}" if len(outcomes) > limit else "")


def _parse(value: str) -> datetime:
    parsed = parse_iso8601(value)
    if parsed is None:
        raise ValueError(f"not an ISO-8601 time: {value!r}")
    return parsed
