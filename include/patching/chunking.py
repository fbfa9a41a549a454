"""Requests of a wave split into smaller concurrent ones, each answer or error kept apart.

CLC processes a batch job one server after another (reference §6, simulator: N x the per-server
time), so one startMaintenance or Execute Package request for 50 servers starts the last one
minutes after the first. Several smaller requests sent at once run side by side: a wave starts
within one chunk's time. The ledger rules do not change: the caller makes every server of every
chunk durable (``requested``, ``submitting``) before any request is sent (I1, I2), then records
each chunk's answer or error for that chunk's servers only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from include.clc.errors import ClcError

T = TypeVar("T")
R = TypeVar("R")

#: Requests in flight at once from one rollout (a count: not scaled by ``time_scale``).
MAX_PARALLEL = 8


def chunks(ids: Sequence[str], size: int | None) -> list[list[str]]:
    """``ids`` in order, in pieces of at most ``size`` (None or < 1: one piece)."""
    items = list(ids)
    if not items:
        return []
    if size is None or size < 1 or size >= len(items):
        return [items]
    return [items[i : i + size] for i in range(0, len(items), size)]


def each(
    call: Callable[[T], R], items: Sequence[T], *, max_parallel: int = MAX_PARALLEL
) -> list[R | ClcError]:
    """``call`` on every item, at most ``max_parallel`` at a time; a ``ClcError`` is returned in
    its item's place (the others still run), any other exception is raised once all have ended."""

    def guarded(item: T) -> R | ClcError:
        try:
            return call(item)
        except ClcError as exc:
            return exc

    if len(items) <= 1 or max_parallel <= 1:
        return [guarded(item) for item in items]
    with ThreadPoolExecutor(
        max_workers=min(max_parallel, len(items)), thread_name_prefix="clc-chunk"
    ) as pool:
        return list(pool.map(guarded, items))
