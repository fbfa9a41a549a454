"""Simulated clock. ``time_scale`` is wall seconds per simulated second: with 0.01 a
30-minute patch (1,800 simulated seconds) takes 18 s of wall time.

State is never advanced by a background loop; every reader asks the clock for "now" and
derives what happened since. ``advance()`` jumps forward (tests, demos), ``set_scale()``
re-anchors so that changing the speed never makes time jump.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso(ts: float) -> str:
    """Render a simulated epoch timestamp as ``YYYY-MM-DDTHH:MM:SSZ`` (no fraction)."""
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class Clock:
    """Scaled wall clock. ``now()`` returns simulated epoch seconds (float)."""

    def __init__(self, start: float | None = None, time_scale: float = 1.0, wall=time.time):
        self._wall = wall
        self._anchor_wall = wall()
        self._anchor_sim = self._anchor_wall if start is None else start
        self.time_scale = float(time_scale)

    def now(self) -> float:
        return self._anchor_sim + (self._wall() - self._anchor_wall) / self.time_scale

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the simulated clock cannot go backwards")
        self._anchor_sim += seconds
        return self.now()

    def set_scale(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        now = self.now()
        self._anchor_wall = self._wall()
        self._anchor_sim = now
        self.time_scale = float(time_scale)

    def wall_seconds_until(self, sim_ts: float) -> float:
        """Wall seconds until the simulated instant ``sim_ts`` (0 when already past)."""
        return max(0.0, (sim_ts - self.now()) * self.time_scale)

    def wall_at(self, sim_ts: float) -> float:
        """The wall-clock epoch at which the simulated instant ``sim_ts`` falls (at the current scale)."""
        return self._anchor_wall + (sim_ts - self._anchor_sim) * self.time_scale

    def to_dict(self) -> dict:
        # Persist "sim time at wall time": after a restart (even kill -9) time carries on
        # as if the simulator had kept running.
        return {"sim": self.now(), "wall": self._wall(), "time_scale": self.time_scale}

    def restore(self, data: dict) -> None:
        self._anchor_sim = float(data["sim"])
        self._anchor_wall = float(data["wall"])
        self.time_scale = float(data["time_scale"])


class ManualClock(Clock):
    """A clock that only moves when told to: for fast, deterministic model tests."""

    def __init__(self, start: float = 1_458_000_000.0):
        self._t = float(start)
        super().__init__(start=start, time_scale=1.0, wall=lambda: self._t)

    def tick(self, seconds: float) -> float:
        self._t += seconds
        return self.now()
