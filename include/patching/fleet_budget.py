"""Fleet-wide ``max_concurrency`` and ``max_errors`` across the package rollouts of one run.

``patch_fleet`` rolls each package out in its own task instance; the two may run at the same
time. The run's limits are fleet-wide (a percentage is of the whole fleet's targets), so each
rollout reads its siblings' ledgers in the run folder — the same files the board reads — to
count the fleet's errors and servers in flight:

- errors: the fleet's servers in an error state (``ERROR_STATES``: failed, timed out,
  unhealthy, reverted, revert failed); once they exceed ``max_errors`` no rollout
  starts another server (SSM semantics, like the per-package budget before);
- concurrency: a package's share of the slots is proportional to its remaining work — its
  remaining servers (queued + in flight) times the mean time its servers have taken so far
  (the fleet's mean while it has none; counts alone before any server has completed) — and at
  least 1. Counts alone left the package with the slower servers (Windows: several reboots) as
  the tail of the run. Once every sibling has nothing in flight and nothing queued, the
  remaining package may use every slot.

Never more than ``max_concurrency`` in flight fleet-wide, even with two workers filling at the
same moment: a server is admitted (its ledger entry marked ``submitting``, durable before the
POST, I1) under an exclusive lock on ``fleet_budget.lock`` in the run folder, after re-reading
the siblings' ledgers. A sibling that has not written its ledger yet counts with its planned
targets queued. On object storage, where no lock exists, each package keeps a fixed share
instead (the limit apportioned by planned targets; a package whose share rounds to 0 waits
until its siblings have finished): the shares add up to the limit, so no lock is needed.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.artifacts import PathLike, local_path
from include.patching.rate_control import budget_exhausted
from include.patching.rollout_state import IN_FLIGHT, Ledger, Phase, ledger_path, load_path
from include.patching.states import ERROR_STATES
from include.timefmt import parse_iso8601, utcnow

LOCK_NAME = "fleet_budget.lock"
#: The states counted against ``max_errors``, as the rollout counts them (``Rollout.errors``).
_ERRORS = frozenset(state.value for state in ERROR_STATES)
_IN_FLIGHT = frozenset(p.value for p in IN_FLIGHT)


@dataclass(frozen=True)
class PackageLoad:
    """What one package's rollout holds right now."""

    key: str
    in_flight: int
    queued: int
    errors: int
    mean_seconds: float | None = None
    """Estimated time a server of the package takes: its completed servers' mean duration, or
    the mean age of those in flight when larger (a package whose servers run long is seen to be
    slow before the first one completes); None: nothing started yet."""

    @property
    def remaining(self) -> int:
        return self.in_flight + self.queued

    @classmethod
    def of_servers(cls, key: str, servers: Mapping[str, Mapping[str, Any]]) -> PackageLoad:
        """Counted from a ledger file's ``servers`` (raw JSON: no typed entries needed)."""
        phases = [str(e.get("phase")) for e in servers.values()]
        return cls(
            key=key,
            in_flight=sum(1 for p in phases if p in _IN_FLIGHT),
            queued=sum(1 for p in phases if p == Phase.QUEUED.value),
            errors=sum(1 for e in servers.values() if e.get("state") in _ERRORS),
            mean_seconds=_estimate(
                [e.get("wall_seconds") for e in servers.values()],
                [_age(e.get("request_time")) for e in servers.values() if str(e.get("phase")) in _IN_FLIGHT],
            ),
        )

    @classmethod
    def of_digest(cls, key: str, digest: Mapping[str, Any]) -> PackageLoad:
        """Counted from a ledger's digest (``Ledger.digest``): the same figures, without parsing
        a ledger of thousands of servers on every refill."""
        count = int(digest.get("durations") or 0)
        return cls(
            key=key,
            in_flight=int(digest.get("in_flight") or 0),
            queued=int(digest.get("queued") or 0),
            errors=int(digest.get("errors") or 0),
            mean_seconds=_estimate(
                [float(digest.get("duration_sum") or 0.0) / count] if count else [],
                [_age(t) for t in digest.get("in_flight_since") or []],
            ),
        )

    @classmethod
    def of_ledger(cls, key: str, ledger: Ledger) -> PackageLoad:
        """Counted from a ledger in memory, by the same rules as its digest."""
        return cls.of_digest(key, ledger.digest())


def _age(request_time: Any) -> float | None:
    """Seconds since an in-flight server's request (our clock)."""
    requested = parse_iso8601(request_time) if isinstance(request_time, str) else None
    return (utcnow() - requested).total_seconds() if requested is not None else None


def _estimate(durations: list[Any], ages: list[Any]) -> float | None:
    """The larger of the completed servers' mean duration and the in-flight servers' mean age:
    servers still running are at least that slow, fresh starts never pull the estimate down."""
    known = [m for m in (_mean(durations), _mean(ages)) if m is not None]
    return max(known) if known else None


def _mean(values: Iterable[Any]) -> float | None:
    seen = [float(v) for v in values if isinstance(v, int | float) and v > 0]
    return sum(seen) / len(seen) if seen else None


def share(limit: int, mine: PackageLoad, others: list[PackageLoad]) -> int:
    """Slots this package may hold: proportional to its remaining work, at least 1; every slot
    once the siblings have finished (nothing in flight, nothing queued)."""
    if not any(o.remaining for o in others):
        return limit
    loads = [mine, *others]
    known = [load.mean_seconds for load in loads if load.mean_seconds]
    fallback = sum(known) / len(known) if known else 1.0

    def work(load: PackageLoad) -> float:
        return load.remaining * (load.mean_seconds or fallback)

    total = sum(work(load) for load in loads)
    return max(1, int(limit * work(mine) / total)) if total > 0 else 1


def free_slots(limit: int, mine: PackageLoad, others: list[PackageLoad]) -> int:
    """Servers this package may start now: within its share and within the fleet-wide limit."""
    fleet_in_flight = mine.in_flight + sum(o.in_flight for o in others)
    return max(0, min(share(limit, mine, others) - mine.in_flight, limit - fleet_in_flight))


def fixed_share(limit: int, key: str, targets: Mapping[str, int], finished: set[str]) -> int:
    """Lock-free share (object storage): ``limit`` apportioned by planned targets (largest
    remainder, ties by key), so the shares of all packages add up to ``limit`` exactly.
    Once every other package with targets has finished, this one gets every slot."""
    live = {k: n for k, n in targets.items() if n > 0}
    if key not in live:
        return 0
    if all(k in finished for k in live if k != key):
        return limit
    total = sum(live.values())
    exact = {k: limit * n / total for k, n in live.items()}
    shares = {k: int(v) for k, v in exact.items()}
    spare = limit - sum(shares.values())
    for k in sorted(live, key=lambda k: (-(exact[k] - shares[k]), k))[:spare]:
        shares[k] += 1
    return shares[key]


class FleetBudget:
    """One package rollout's view of the run's fleet-wide limits (see the module docstring).

    :param folder: the run folder holding every package's ledger.
    :param package_key: this rollout's package.
    :param targets: planned targets per package key (the whole fleet's plan).
    :param max_concurrency: / ``max_errors``: fleet-wide, already resolved against the fleet's targets.
    """

    def __init__(
        self,
        folder: PathLike,
        package_key: str,
        targets: Mapping[str, int],
        *,
        max_concurrency: int,
        max_errors: int,
    ) -> None:
        self.folder, self.package_key = folder, package_key
        self.targets = dict(targets)
        self.max_concurrency, self.max_errors = max_concurrency, max_errors
        self._local = local_path(folder)
        self._cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}

    @property
    def locking(self) -> bool:
        """True when admissions are serialised by a file lock (a local run folder)."""
        return self._local is not None

    # --- reading the siblings ------------------------------------------------------------

    def siblings(self) -> list[PackageLoad]:
        return [self._load(key) for key in sorted(self.targets) if key != self.package_key]

    def digest_path(self) -> PathLike:
        """Where this package's ledger writes its digest for the siblings (``Ledger.digest``)."""
        return load_path(self.folder, self.package_key)

    def _load(self, key: str) -> PackageLoad:
        """A sibling's load from its ledger's digest (or, before its first save with one, from
        the ledger itself); re-read only when the file was replaced."""
        digest = self._read(key, load_path(self.folder, key))
        if digest is not None:
            return PackageLoad.of_digest(key, digest)
        ledger = self._read(key, ledger_path(self.folder, key))
        if ledger is not None:
            return PackageLoad.of_servers(key, ledger.get("servers") or {})
        return PackageLoad(key, 0, self.targets.get(key, 0), 0)

    def _read(self, key: str, path: PathLike) -> dict[str, Any] | None:
        """The JSON at ``path`` (None: not there yet); locally, parsed again only once replaced."""
        if self._local is None:
            if not path.exists():
                return None
            with path.open("r") as fh:
                return dict(json.load(fh))
        local = self._local / Path(str(path)).name
        try:
            st = os.stat(local)
        except FileNotFoundError:
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # atomic replace: a new inode each write
        cached = self._cache.get(str(local))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        data = dict(json.loads(local.read_text()))
        self._cache[str(local)] = (stamp, data)
        return data

    # --- decisions -----------------------------------------------------------------------

    def errors(self, mine: Ledger) -> int:
        """Failed + timed-out servers of the whole fleet (this package's from memory)."""
        return PackageLoad.of_ledger(self.package_key, mine).errors + sum(o.errors for o in self.siblings())

    def exhausted(self, mine: Ledger) -> bool:
        return budget_exhausted(self.errors(mine), self.max_errors)

    def slots(self, mine: Ledger) -> int:
        """Servers this package may start now (advisory: ``admit`` decides under the lock)."""
        load = PackageLoad.of_ledger(self.package_key, mine)
        others = self.siblings()
        if not self.locking:
            finished = {o.key for o in others if not o.remaining}
            fixed = fixed_share(self.max_concurrency, self.package_key, self.targets, finished)
            return max(0, fixed - load.in_flight)
        return free_slots(self.max_concurrency, load, others)

    def admit(self, mine: Ledger, ready: list[str], mark: Callable[[list[str]], None]) -> list[str]:
        """The servers of ``ready`` that may start now; ``mark`` makes them durable in flight
        while the lock is held, so a sibling filling at the same moment counts them."""
        with self._lock():
            self._cache.clear()  # decide on the siblings' files as they are now
            admitted = ready[: self.slots(mine)]
            if admitted:
                mark(admitted)
        return admitted

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        if self._local is None:
            yield
            return
        import fcntl

        os.makedirs(self._local, exist_ok=True)
        fd = os.open(self._local / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock
