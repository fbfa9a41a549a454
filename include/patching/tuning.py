"""Every timing default of patchflow, and the one knob that scales them all (framework-free).

Production values suit the real platform: patch runs of tens of minutes, maintenance jobs of
minutes, a 14-day token. The simulator can run its clock ``1/time_scale`` times faster; the
demo, the tests and the benchmarks then set ``[patchflow] time_scale`` to the simulator's
``--time-scale`` so that *every* duration here shrinks by the same factor. Races therefore
keep their production proportions (an execution that starts 6 minutes after its request is
still "late" compared with every poll interval and margin), instead of a hand-picked mix of
fast and production values that hides them.

Resolution order for one setting: an explicit value (operator/trigger argument, connection
extra) > ``[patchflow] <name>`` (taken as is, not scaled) > production default x time_scale.

Not scaled, on purpose: the HTTP request timeout of the connection (it bounds how long the
API takes to *answer*, which does not speed up with simulated time) and counts (retries,
parallel requests).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

#: Airflow config section (``AIRFLOW__PATCHFLOW__<NAME>``) holding the knob and the overrides.
CONFIG_SECTION = "patchflow"
TIME_SCALE = "time_scale"


@dataclass(frozen=True)
class Tuning:
    """Timing settings in seconds (production defaults)."""

    poll_interval: float = 10.0
    """Trigger: first poll after a request; later gaps grow from it."""
    max_poll_interval: float = 120.0
    """Trigger: the largest gap between two polls of one server."""
    batch_window: float = 30.0
    """Trigger: after the first outcome, wait this long for more before resuming the task."""
    release_delay: float = 300.0
    """Rollout: how long a finished server's maintenance-off may wait to share one stopMaintenance
    request with the servers finishing after it (``release_chunk`` of them go at once; checked
    as servers finish). A rollout refilling in the worker sees completions one by one: at once
    (0) cost 0.86 stopMaintenance requests per server at 200 servers; with a minute and 5 per
    request, 0.30 at 1,000 servers; three minutes and 25 per request, 0.13 (bench/makespan.py).
    There the delay, not the chunk, set the count; five minutes stays well inside a
    maintenance window."""
    api_clock_age: float = 120.0
    """Rollout: the patching service's time from an answer at most this old dates a request's new
    execution (``not_before``) instead of a read of the server's history right before the POST:
    one request per server saved, while the rollout keeps reading the servers in flight."""
    maintenance_timeout: float = 600.0
    """Rollout: how long a startMaintenance job may take."""
    job_poll_interval: float = 2.0
    """Worker: first gap between two queue-job polls (grows x1.5)."""
    job_poll_cap: float = 15.0
    """Worker: the largest gap between two queue-job polls."""
    release_job_timeout: float = 600.0
    """Release task: how long a stopMaintenance job may take."""
    deferral_margin: float = 900.0
    """Operator: deferral timeout beyond the latest per-server deadline (backstop, I7)."""
    retry_base: float = 1.0
    """Hooks: full-jitter backoff base for retried requests."""
    retry_cap: float = 30.0
    """Hooks: the largest backoff (also caps a server's Retry-After)."""
    token_refresh_margin: float = 300.0
    """Hooks: log in again this long before the token's declared lifetime is over."""
    task_retry_delay: float = 30.0
    """DAGs: the delay before Airflow retries a failed task (a crashed worker's task included)."""
    health_probe_timeout: float = 10.0
    """Trigger: how long one post-patch health probe (HTTP or TCP) may take."""
    health_retry_interval: float = 30.0
    """Trigger: the pause between two tries of a post-patch health check that failed."""
    snapshot_timeout: float = 600.0
    """Rollout: how long one server's snapshot may take; a batch's createSnapshot job may take
    this times its servers (the platform takes them one after the other, ~2 min each, §10.1)."""
    revert_timeout: float = 1800.0
    """Rollout: how long a snapshot restore may take until the server runs again (observed
    34-61 s; large snapshots are slower, §10.2); past it the server ends ``revert_failed``."""
    snapshot_cleanup_grace: float = 2 * 86400.0
    """snapshot_cleanup DAG: a ledger untouched this long belongs to a run that is over (a
    server's timeout is at most 24 h); younger ones are left alone."""
    window_cutoff: float = 1800.0
    """Rollout: no server is started when less than this remains of its maintenance window."""
    note_interval: float = 30.0
    """Rollout: the run's note (one line per package) is brought up to date at most this often
    while servers patch, and at once when one fails or the rollout ends. Each update reads every
    package's ledger and calls Airflow's REST API twice: per refill, at 10,000 servers, that was
    most of the worker loop's time."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def scaled(self, time_scale: float) -> Tuning:
        """Every setting multiplied by ``time_scale``."""
        factor = check_time_scale(time_scale)
        return replace(self, **{name: getattr(self, name) * factor for name in self.names()})

    def with_overrides(self, overrides: Mapping[str, float]) -> Tuning:
        unknown = sorted(set(overrides) - set(self.names()))
        if unknown:
            raise ValueError(f"unknown timing setting(s): {', '.join(unknown)}")
        return replace(self, **{name: float(value) for name, value in overrides.items()})


PRODUCTION = Tuning()


def check_time_scale(value: float | str) -> float:
    scale = float(value)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"{CONFIG_SECTION}.{TIME_SCALE} must be a number > 0, got {value!r}")
    return scale


def resolve(read: Callable[[str], str | None]) -> tuple[Tuning, float]:
    """The effective tuning and time scale from a config reader (``name -> value or None``)."""
    raw_scale = read(TIME_SCALE)
    scale = check_time_scale(raw_scale) if raw_scale not in (None, "") else 1.0
    overrides = {}
    for name in Tuning.names():
        raw = read(name)
        if raw not in (None, ""):
            overrides[name] = float(raw)
    return PRODUCTION.scaled(scale).with_overrides(overrides), scale


@dataclass(frozen=True)
class Sizes:
    """Counts that shape the load on the API; never scaled by ``time_scale`` (they are not times).
    Overridden like the timings, as is: ``[patchflow] <name>`` (``AIRFLOW__PATCHFLOW__<NAME>``)."""

    request_chunk: int = 5
    """Rollout: servers per startMaintenance / Execute Package request; a wave's requests are sent
    at once. CLC processes a request's servers one after another, so with 50 servers in one
    request the last would start minutes after the first (``include.patching.chunking``)."""

    ahead_chunk: int = 10
    """Rollout: servers asked into maintenance in one request ahead of their slot, once fewer
    than that many are ready; their job runs while others patch. Should a refill ever wait for
    such a job, the rollout falls back to ``request_chunk``."""
    release_chunk: int = 25
    """Rollout: finished servers per stopMaintenance request while others still patch (they wait
    up to ``release_delay`` for each other). Nothing waits on that job, so its length (CLC takes
    the servers one after another) delays no patch. In the tail (nothing left to start) the
    fewer, sparser completions share requests of ``request_chunk``; at the end all go at once."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


SIZES = Sizes()


def resolve_sizes(read: Callable[[str], str | None]) -> Sizes:
    """The defaults with the deployment's overrides (whole numbers >= 1; bad ones are named)."""
    values = {}
    for name in Sizes.names():
        raw = read(name)
        if raw in (None, ""):
            continue
        try:
            number = int(str(raw).strip())
        except ValueError:
            number = 0
        if number < 1:
            raise ValueError(f"{CONFIG_SECTION}.{name} must be a whole number >= 1, got {raw!r}")
        values[name] = number
    return replace(SIZES, **values)
