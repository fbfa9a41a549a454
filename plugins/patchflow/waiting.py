"""The deferred wait for a rollout's in-flight servers, shared by every operator that defers on it.

``PatchRolloutOperator`` and ``PatchExecutionSensor`` both hand a ``Rollout``'s in-flight servers
to ``PatchCompletionTrigger`` and bound the deferral by the latest per-server deadline plus a
margin (a dead triggerer must not leave the task deferred forever, I7).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from include.patching.rollout import Rollout
from include.timefmt import utcnow


def completion_trigger(
    rollout: Rollout, *, clc_conn_id: str, poll_interval: float, max_poll_interval: float, batch_window: float
) -> Any:
    """The trigger watching every in-flight server of ``rollout`` (None when none is in flight)."""
    from patchflow.triggers.patching import PatchCompletionTrigger

    watch = rollout.watch_list()
    if not watch:
        return None
    return PatchCompletionTrigger(
        servers=watch,
        alias=rollout.config.alias,
        clc_conn_id=clc_conn_id,
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        batch_window=batch_window,
    )


def deferral_timeout(rollout: Rollout, margin: float) -> timedelta:
    """Until the latest in-flight deadline, plus ``margin`` seconds for the trigger to report it."""
    latest = rollout.latest_deadline() or utcnow()
    return timedelta(seconds=max((latest - utcnow()).total_seconds(), 0.0) + margin)
