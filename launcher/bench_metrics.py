"""Benchmark arithmetic over the simulator's timeline (``/_sim/timeline``): pure functions.

``bench/makespan.py`` judges patchflow and the SDK peer by what really happened on each server —
when its execution ran, whether it was in maintenance meanwhile — not by what the tool believed.
Kept out of ``bench/`` (whose every script ``make bench`` runs) so it is importable and tested.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


def list_schedule(durations: Iterable[float], slots: int) -> float:
    """Makespan of starting each job, in order, on the first free slot (no overhead)."""
    jobs = list(durations)
    free = [0.0] * min(max(slots, 1), max(len(jobs), 1))
    heapq.heapify(free)
    end = 0.0
    for d in jobs:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


def fleet_ideal(jobs: Iterable[tuple[float, float]], slots: int) -> float:
    """The ideal under a fleet-wide limit: every package's servers, ordered by ``(order key,
    duration)`` pairs' key (the order the rollout really started them), list-scheduled together
    onto ``slots`` slots."""
    return list_schedule((d for _, d in sorted(jobs, key=lambda j: j[0])), slots)


def peak_concurrency(intervals: Iterable[tuple[float, float]]) -> int:
    """Most intervals open at once (an interval ending when another starts does not overlap it)."""
    events = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda e: (e[0], e[1]),
    )
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def uncovered_seconds(span: tuple[float, float], cover: Iterable[tuple[float | None, float | None]]) -> float:
    """How much of ``span`` no interval of ``cover`` covers (``None`` ends are open)."""
    start, end = span
    pieces = sorted(
        (max(start, -float("inf") if a is None else a), min(end, float("inf") if b is None else b))
        for a, b in cover
    )
    gap, cursor = 0.0, start
    for a, b in pieces:
        if b <= cursor:
            continue
        if a > cursor:
            gap += min(a, end) - cursor
        cursor = max(cursor, b)
        if cursor >= end:
            break
    return gap + max(0.0, end - cursor)


@dataclass(frozen=True)
class TimelineFigures:
    """What the simulator saw of one tool's run, over the servers it was asked to patch."""

    executions: int
    completed: int
    first_start: float | None
    last_end: float | None
    """Wall epoch when the last execution really completed (the true completion)."""
    peak_concurrency: int
    outside_maintenance: list[str]
    """Servers whose execution ran for a while with their maintenance mode off."""


def timeline_figures(timeline: Mapping[str, Any], servers: Iterable[str]) -> TimelineFigures:
    """Figures from ``/_sim/timeline`` for ``servers`` (wall-clock times)."""
    spans: list[tuple[float, float]] = []
    outside: list[str] = []
    completed = 0
    for sid in servers:
        entry = timeline["servers"].get(sid)
        if not entry:
            continue
        cover = [(m["on_wall"], m["off_wall"]) for m in entry["maintenance"]]
        for ex in entry["executions"]:
            completed += bool(ex["completed"])
            end = ex["end_wall"] if ex["completed"] else timeline["now_wall"]
            spans.append((ex["start_wall"], end))
            if uncovered_seconds((ex["start_wall"], end), cover) > 0 and sid not in outside:
                outside.append(sid)
    return TimelineFigures(
        executions=len(spans),
        completed=completed,
        first_start=min((s for s, _ in spans), default=None),
        last_end=max((e for _, e in spans), default=None),
        peak_concurrency=peak_concurrency(spans),
        outside_maintenance=outside,
    )


def early_done(believed_done: Mapping[str, float], timeline: Mapping[str, Any]) -> list[str]:
    """Servers a tool called done (wall epoch) before their last execution had really completed."""
    early = []
    for sid, done_at in believed_done.items():
        entry = timeline["servers"].get(sid)
        executions = entry["executions"] if entry else []
        if not executions:
            continue
        last = executions[-1]
        if not last["completed"] or last["end_wall"] > done_at:
            early.append(sid)
    return early
