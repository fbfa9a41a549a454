"""When to read a patch execution next: from what the platform has shown, not a fixed cadence.

An execution is a series of initiations (reference §9.1 to 9.2): each scans and installs what it
finds, the server may reboot, and the initiation that finds nothing ends the execution. Only
the installing part is open-ended; the last scan is short and regular. So once a package's
first executions have completed (``Cadence.learn``), each read of a pending execution plans
the next one for a moment the execution could have completed: the end of a running scan, or
— while it installs — one of the install ends this rollout has seen, plus the pause and the
last scan. Which one is chosen by pricing (``Cadence.install_read``): each read costs one
request, each second a completion goes unseen costs ``READ_PRICE``-th of one; reads of long
installs are spaced where few installs end. That costs a few reads per server where a fixed
back-off needs ten, and sees most completions within seconds.

Clocks (I8): only API times are subtracted from API times. Where the API's clock stood at a
read comes from the answer's ``Date`` header (the same clock that dates the executions), so
"how long has this initiation run" needs no comparison with our clock; ``rate`` converts API
seconds to ours, as measured between an execution's dated reads (until then ``[patchflow]
time_scale``: 1 in production, the simulator's speed in tests).
Without a ``Date`` header the read is taken to be the request's age, which only reads early.
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from include.timefmt import parse_iso8601

#: completed executions a cadence needs before it is trusted (the first to complete are the
#: quickest: they teach the scan, the pause and the start's lag; installs are learnt as they come)
MIN_SAMPLES = 3
#: the API's times (summary and ``Date``) are whole seconds: a read aimed at a moment goes one
#: second past it, or it may land a fraction early and see the execution still pending
GRAIN = 1.0
#: the first read of an execution comes after this share of the learnt starts (``start_lag``)
START_SHARE = 0.9
#: a refill waits at most this share of a scan for completions due that soon (``Cadence.hold``)
HOLD_SHARE = 0.2
#: a lone completion waits at most this share of a scan for a second one (``Cadence.pair_hold``)
PAIR_SHARE = 0.5
#: an installing initiation's planned read is at most this share of its age ahead (or one pause
#: and scan, if longer): a rough bound on how late a long install's end is seen
MAX_AHEAD = 0.25
#: installing initiations kept to learn from (evenly thinned beyond that: trigger kwargs stay small)
MAX_INSTALLS = 200
#: API seconds of one server's completion going unseen that cost as much as one more read: reads
#: of an install are planned to minimise reads + unseen seconds / READ_PRICE (``install_read``).
#: 25 s: about a tenth of a typical install. On the generated 1,000-server fleet 20 saved a third
#: of a read per server for under 1 % of makespan, 25 another 0.05 for a percent more (and
#: cheaper reads cost makespan fast beyond that)
READ_PRICE = 25.0
#: reads expected for an install that outlasts every one learnt (the MAX_AHEAD search)
UNLEARNT_READS = 2.0


@dataclass(frozen=True)
class Initiation:
    """One initiation of an execution, in API seconds from the execution's start."""

    start: float
    end: float | None
    installed: int | None
    """Updates its end message names; None while it runs."""


def initiations(execution: dict[str, Any]) -> list[Initiation]:
    """The summary's initiations relative to the execution's start (unreadable times dropped)."""
    start = parse_iso8601(execution.get("start_time") or "")
    if start is None:
        return []
    out = []
    for item in execution.get("init_messages") or []:
        begin = parse_iso8601(item.get("start_time") or "")
        if begin is None:
            continue
        end = parse_iso8601(item.get("end_time") or "")
        out.append(
            Initiation(
                start=(begin - start).total_seconds(),
                end=None if end is None else (end - start).total_seconds(),
                installed=None if end is None else _installed(item.get("init_end_message") or ""),
            )
        )
    return out


def _installed(message: str) -> int:
    """``Installed 3 updates: …`` → 3 (0 when the message names no count)."""
    words = message.split()
    if len(words) >= 2 and words[0].lower() == "installed" and words[1].isdigit():
        return int(words[1])
    return 0


@dataclass(frozen=True)
class ExecutionShape:
    """What one completed execution teaches about the next ones (kept in its ledger entry)."""

    final: float
    """API seconds of its last initiation (the one that found nothing)."""
    gaps: tuple[float, ...]
    """API seconds between an initiation's end and the next one's start."""
    installs: tuple[float, ...]
    """API seconds of each initiation that installed something."""
    start_lag: float | None = None
    """Our seconds from the request to the execution's start (from a dated read)."""
    rate: float | None = None
    """Our seconds per API second between this execution's first and last dated reads."""

    @classmethod
    def of(
        cls, execution: dict[str, Any], start_lag: float | None = None, rate: float | None = None
    ) -> ExecutionShape | None:
        inits = initiations(execution)
        if not inits or any(i.end is None for i in inits):
            return None
        ends = [i.end for i in inits if i.end is not None]
        gaps = tuple(max(b.start - e, 0.0) for e, b in zip(ends, inits[1:], strict=False))
        return cls(
            final=max(ends[-1] - inits[-1].start, 0.0),
            gaps=gaps,
            installs=tuple(e - i.start for e, i in zip(ends[:-1], inits[:-1], strict=True)),
            start_lag=start_lag,
            rate=rate,
        )

    @classmethod
    def after_detail(
        cls, inits: list[Initiation], end: float, start_lag: float | None = None, rate: float | None = None
    ) -> ExecutionShape | None:
        """The shape of an execution whose last summary showed ``inits``, the last running, and
        whose detail then said completed ``end`` API seconds after its start
        (``final_scan_confirmed``): the running initiation was the last scan."""
        if not inits or inits[-1].end is not None or any(i.end is None for i in inits[:-1]):
            return None
        ends = [i.end for i in inits[:-1] if i.end is not None]
        return cls(
            final=max(end - inits[-1].start, 0.0),
            gaps=tuple(max(b.start - e, 0.0) for e, b in zip(ends, inits[1:], strict=False)),
            installs=tuple(e - i.start for e, i in zip(ends, inits[:-1], strict=True)),
            start_lag=start_lag,
            rate=rate,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "final": self.final,
            "gaps": list(self.gaps),
            "installs": list(self.installs),
            "start_lag": self.start_lag,
            "rate": self.rate,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutionShape:
        lag, rate = data.get("start_lag"), data.get("rate")
        return cls(
            final=float(data["final"]),
            gaps=tuple(float(g) for g in data.get("gaps") or ()),
            installs=tuple(float(s) for s in data.get("installs") or ()),
            start_lag=None if lag is None else float(lag),
            rate=None if rate is None else float(rate),
        )


def _p(values: list[float], share: float) -> float:
    """The ``share`` quantile of sorted ``values`` (nearest rank)."""
    return values[min(len(values) - 1, int(len(values) * share))]


@dataclass(frozen=True)
class Cadence:
    """A package's executions as this rollout has seen them complete."""

    final: float
    """Median API seconds of the last initiation."""
    final_late: float
    """API seconds past which a running initiation is taken to be installing, not the last scan."""
    short_gap: float
    """Shortest API pause seen between initiations (no reboot)."""
    long_gap: float
    """Longest API pause seen between initiations (a reboot)."""
    installs: tuple[float, ...]
    """API seconds of installing initiations, sorted."""
    start_lag: float
    """Our seconds from request to the execution's start that nine in ten starts kept within:
    the platform starts a request's servers one after another, so the later ones in a request
    start seconds after the first (``earliest_completion``)."""
    rate: float = 1.0
    """Our seconds per API second (``[patchflow] time_scale``)."""
    read_price: float = READ_PRICE
    """API seconds of an unseen completion worth one read (``install_read``)."""

    @classmethod
    def learn(cls, shapes: list[ExecutionShape], *, rate: float = 1.0) -> Cadence | None:
        if len(shapes) < MIN_SAMPLES:
            return None
        finals = sorted(s.final for s in shapes)
        gaps = sorted(g for s in shapes for g in s.gaps)
        installs = sorted(i for s in shapes for i in s.installs)
        installs = installs[:: max(1, -(-len(installs) // MAX_INSTALLS))]  # evenly thinned: same spread
        lags = [s.start_lag for s in shapes if s.start_lag is not None]
        rates = [s.rate for s in shapes if s.rate]  # measured: wins over the configured one
        return cls(
            final=statistics.median(finals),
            final_late=_p(finals, 0.9) + (_p(finals, 0.9) - _p(finals, 0.1)) + 2 * GRAIN,
            short_gap=gaps[0] if gaps else 0.0,
            long_gap=gaps[-1] if gaps else 0.0,
            installs=tuple(installs),
            start_lag=_p(sorted(lags), START_SHARE) if lags else 0.0,
            rate=statistics.median(rates) if rates else rate,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "final": self.final,
            "final_late": self.final_late,
            "short_gap": self.short_gap,
            "long_gap": self.long_gap,
            "installs": list(self.installs),
            "start_lag": self.start_lag,
            "rate": self.rate,
            "read_price": self.read_price,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cadence:
        """The cadence, the same object as last time for the same values: its install plan
        (``_plan``, O(installs²)) is worked out once, not once per trigger."""
        cadence = cls(
            final=float(data["final"]),
            final_late=float(data["final_late"]),
            short_gap=float(data["short_gap"]),
            long_gap=float(data["long_gap"]),
            installs=tuple(sorted(float(x) for x in data.get("installs") or ())),
            start_lag=float(data.get("start_lag") or 0.0),
            rate=float(data.get("rate") or 1.0),
            read_price=float(data.get("read_price") or READ_PRICE),
        )
        known = _RECENT.get(cadence)
        if known is None:
            _RECENT.clear()  # the last one is all a rollout's next trigger needs
            known = _RECENT[cadence] = cadence
        return known

    def hold(self) -> float:
        """Our seconds a refill may wait after a completion for others due that soon: one
        Execute Package request for several freed slots, at the cost of a fifth of a scan."""
        return HOLD_SHARE * self.final * self.rate

    def pair_hold(self) -> float:
        """Our seconds a lone completion waits for a second before its slot is refilled: one
        Execute Package request (and one queue job) for two slots. A slot frees every
        few seconds in a busy rollout, so the wait is mostly far shorter than this bound."""
        return PAIR_SHARE * self.final * self.rate

    def earliest_completion(self) -> float:
        """Our seconds from a request to the earliest its execution is likely to complete: the
        start's lag plus one scan, and a grain. A read before it would find nothing to report;
        one aimed at the median start found half the servers later in their request still
        scanning, and cost each of them a second read at the scan's end. Read a few seconds
        late instead, a first scan mostly goes on installing anyway."""
        return self.start_lag + (self.final + GRAIN) * self.rate

    def tail(self) -> float:
        """API seconds from an install's end to the read that sees the execution completed,
        if the initiation after it is the last: the pause, the last scan and one grain."""
        return self.short_gap + self.final + GRAIN

    def install_read(self, age: float, min_ahead: float = 0.0) -> float:
        """API seconds after an installing initiation's start to read it next, ``age`` into it.

        Each candidate is a learnt install end plus ``tail``: read then, the installs that ended
        by it are seen completed (late by the difference), those that ended within the tail cost
        one more read, the longer ones go on from there. The candidate with the fewest expected
        reads plus unseen seconds / ``read_price`` wins (``_InstallPlan``, by dynamic programming
        over the learnt installs). Past every learnt install: at most ``MAX_AHEAD`` of its age
        ahead (or a pause and a scan), the longest installs being the least learnt.
        """
        ends = self.installs
        first = bisect.bisect_right(ends, age)
        if first == len(ends):
            return age + max(self.final + self.short_gap, MAX_AHEAD * age) + self.tail()
        return self._plan.cheapest(first, age + min_ahead)[1]

    @cached_property
    def _plan(self) -> _InstallPlan:
        return _InstallPlan.of(self.installs, self.tail(), self.read_price)


#: the last cadence made from a dict (``Cadence.from_dict``), with its plan once worked out
_RECENT: dict[Cadence, Cadence] = {}


@dataclass(frozen=True)
class _InstallPlan:
    """The priced reads of an install (``Cadence.install_read``): for each candidate read (a
    learnt install end plus the tail), the expected cost of going on after it, computed from
    the last candidate back — O(installs²), once per cadence."""

    ends: tuple[float, ...]
    tail: float
    price: float
    prefix: tuple[float, ...]
    after: list[float]

    @classmethod
    def of(cls, ends: tuple[float, ...], tail: float, price: float) -> _InstallPlan:
        prefix = [0.0]
        for end in ends:
            prefix.append(prefix[-1] + end)
        plan = cls(ends, tail, max(price, 1e-9), tuple(prefix), [0.0] * len(ends))
        for j in range(len(ends) - 1, -1, -1):  # a state's candidates lie after it: already known
            first = bisect.bisect_right(ends, ends[j] + tail)
            plan.after[j] = UNLEARNT_READS if first == len(ends) else plan.cheapest(first, ends[j] + tail)[0]
        return plan

    def cheapest(self, first: int, earliest: float) -> tuple[float, float]:
        """(expected cost, read age) of the best read no earlier than ``earliest`` for an install
        known to outlast ``ends[first - 1]``."""
        ends, tail = self.ends, self.tail
        alive = len(ends) - first
        best = (float("inf"), max(earliest, ends[-1] + tail))
        for j in range(first, len(ends)):
            read = ends[j] + tail
            if read < earliest:
                continue
            seen = j + 1 - first  # ended by ends[j]: seen completed, late by ends[j] - their end
            late = seen * ends[j] - (self.prefix[j + 1] - self.prefix[first])
            past = bisect.bisect_right(ends, read)
            within = past - j - 1  # ended within the tail: seen installed, one more read
            rest = len(ends) - past  # still installing: they go on from this read
            cost = 1.0 + (late / self.price + within + rest * self.after[j]) / alive
            if cost < best[0]:
                best = (cost, read)
        return best


def next_read(
    cadence: Cadence, inits: list[Initiation], now: datetime, at: float, *, min_gap: float
) -> datetime:
    """When to read a pending execution next, given what the read at ``now`` showed.

    ``at``: API seconds from the execution's start to the read (the answer's ``Date`` header
    minus the execution's ``start_time``); ``min_gap``: our seconds between two reads at least.
    """
    target = _target(cadence, inits, at, min_gap / cadence.rate)
    return now + timedelta(seconds=max((target - at) * cadence.rate, min_gap))


def api_age(execution: dict[str, Any], api_now: datetime | None) -> float | None:
    """API seconds from the execution's start to ``api_now`` (the answer's ``Date``); None without."""
    start = parse_iso8601(execution.get("start_time") or "")
    if start is None or api_now is None:
        return None
    return max((api_now - start).total_seconds(), 0.0)


def in_last_scan(cadence: Cadence, inits: list[Initiation], at: float) -> bool:
    """The running initiation is young enough to be the last scan: the next read (at its end)
    will likely see the execution completed."""
    return bool(inits) and inits[-1].end is None and at - inits[-1].start < cadence.final + GRAIN


def final_scan_confirmed(inits: list[Initiation], detail: dict[str, Any], start: datetime) -> bool:
    """A completed detail after a summary that showed ``inits``, the last still running, is that
    summary with its last initiation over: no patch started since that initiation began (it found
    nothing). Then the summary's initiations and installs stand, observed, not inferred (I8).
    API times compared with API times only."""
    if not inits or inits[-1].end is not None:
        return False
    began = start + timedelta(seconds=inits[-1].start)
    for patch in detail.get("patches") or []:
        when = parse_iso8601(patch.get("start_time") or "")
        if when is None or when >= began:
            return False
    return True


def _target(cadence: Cadence, inits: list[Initiation], at: float, min_ahead: float) -> float:
    """API seconds from the start to the next read (each aimed one ``GRAIN`` past the moment)."""
    if not inits:
        return at + cadence.final * 0.25
    last = inits[-1]
    if last.end is None:  # running: the last scan, or installing
        age = at - last.start
        if age < cadence.final + GRAIN:
            return last.start + cadence.final + GRAIN
        if age < cadence.final_late:  # a scan running a little long, or installing: one more look
            return last.start + cadence.final_late
        return last.start + cadence.install_read(age, min_ahead)
    if last.installed:  # installed, so another initiation follows, after a pause or a reboot
        for gap in (cadence.short_gap, cadence.long_gap):
            if at < last.end + gap + cadence.final + GRAIN:
                return last.end + gap + cadence.final + GRAIN
        return at + cadence.final * 0.5
    return at + cadence.final * 0.25  # found nothing but still pending: completes any moment
