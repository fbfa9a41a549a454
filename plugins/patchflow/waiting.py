"""The deferred wait for a rollout's in-flight servers, shared by every operator that defers on it.

``PatchRolloutOperator`` and ``PatchExecutionSensor`` both hand a ``Rollout``'s in-flight servers
to ``PatchCompletionTrigger`` and bound the deferral by the latest per-server deadline plus a
margin (a dead triggerer must not leave the task deferred forever, I7).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from include.patching.read_schedule import Cadence
from include.patching.rollout import Rollout
from include.patching.rollout_state import Phase
from include.timefmt import utcnow


def completion_trigger(
    rollout: Rollout, *, clc_conn_id: str, poll_interval: float, max_poll_interval: float, batch_window: float
) -> Any:
    """The trigger watching every in-flight server of ``rollout`` (None when none is in flight)."""
    from patchflow.triggers.patching import PatchCompletionTrigger
    from patchflow.tuning import time_scale

    # our seconds per API second until one is measured: the simulator's speed, 1 in production
    cadence = rollout.cadence(time_scale())
    watch = rollout.watch_list(cadence)
    if not watch:
        return None
    return PatchCompletionTrigger(
        servers=watch,
        alias=rollout.config.alias,
        clc_conn_id=clc_conn_id,
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        batch_window=batch_window,
        cadence=None if cadence is None else cadence.as_dict(),
        refill_hold=refill_hold(rollout, cadence),
    )


def refill_window(rollout: Rollout, batch_window: float) -> float:
    """The trigger's batch window: none while servers wait for a free slot.

    A completion then frees a slot a queued server is waiting for, so the event goes at once
    instead of after ``batch_window``; with nothing left to start, grouping completions saves
    resumes and delays nobody.
    """
    return 0.0 if _waiting(rollout) else batch_window


def refill_hold(rollout: Rollout, cadence: Cadence | None) -> float:
    """How long a lone completion waits for a second while servers wait for a slot (``pair_hold``);
    0 with nothing to start or nothing learnt yet."""
    if cadence is None or not _waiting(rollout):
        return 0.0
    return cadence.pair_hold()


def _waiting(rollout: Rollout) -> bool:
    """Servers wait for a slot: queued, with errors left in the budget and the window open."""
    queued = bool(rollout.ledger.in_phase(Phase.QUEUED))
    return queued and not rollout.budget_exhausted() and rollout.may_start_more()


class WorkerReads:
    """A worker's ``ClcHook`` behind the trigger's awaitable reads, to poll in the worker.

    Each read runs in a thread, so a cycle's reads overlap (at most the trigger's
    ``max_parallel``) as the async client's do in the triggerer; the hook is already shared by
    the rollout's concurrent request chunks (``include.patching.chunking.each``).
    """

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    async def get_queue_status(self, alias: str, job_id: str) -> str:
        return await asyncio.to_thread(self.hook.get_queue_status, alias, job_id)

    async def get_patch_summary(self, alias: str, server_id: str) -> list[dict]:
        return await asyncio.to_thread(self.hook.get_patch_summary, alias, server_id)

    async def get_patch_summary_dated(self, alias: str, server_id: str) -> tuple[list[dict], datetime | None]:
        return await asyncio.to_thread(self.hook.get_patch_summary_dated, alias, server_id)

    async def get_patch_detail_dated(
        self, alias: str, server_id: str, execution_id: str
    ) -> tuple[dict, datetime | None]:
        return await asyncio.to_thread(self.hook.get_patch_detail_dated, alias, server_id, execution_id)

    async def get_server(self, alias: str, server_id: str) -> dict:
        """For the post-patch health check (its probe goes out on a session of its own)."""
        return await asyncio.to_thread(self.hook.get_server, alias, server_id)


def deferral_timeout(rollout: Rollout, margin: float) -> timedelta:
    """Until the latest in-flight deadline, plus ``margin`` seconds for the trigger to report it."""
    latest = rollout.latest_deadline() or utcnow()
    return timedelta(seconds=max((latest - utcnow()).total_seconds(), 0.0) + margin)
