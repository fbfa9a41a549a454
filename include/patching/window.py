"""A rollout's maintenance window: when it closes, and whether another server may still start.

A scheduled ring run's window is its data interval (``PatchTuesdayTimetable``); a manual run
may name one (``window_end``, ISO 8601) or have none (no limit: ``patch_fleet``'s behaviour).
No server is *started* once less than the cutoff remains before the window's end: a server
needs time to patch and reboot, and starting it just before the end guarantees an overrun.
Servers already in flight are followed to the end; the audit shows who ended after the window.

The cutoff defaults to ``Tuning.window_cutoff`` (30 minutes in production, scaled by
``time_scale`` like every timing default); a ring or the form may set it in real minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from include.timefmt import parse_iso8601, utc_text

WINDOW_CLOSED = "window closed"
"""The reason of every server not started because the window was closing (audit ``reason``)."""
MAX_CUTOFF_MINUTES = 24 * 60


@dataclass(frozen=True)
class RolloutWindow:
    """The end of the window (aware) and the cutoff before it, in (scaled) seconds."""

    end: datetime | None
    cutoff_seconds: float = 0.0

    def last_start(self) -> datetime | None:
        """The latest moment at which a server may still be started; None: no limit."""
        return None if self.end is None else self.end - timedelta(seconds=self.cutoff_seconds)

    def may_start(self, now: datetime) -> bool:
        last = self.last_start()
        return last is None or now < last

    def ended_after(self, ended_at: datetime | None) -> bool:
        """True when a server's patching ended after the window's end (an overrun)."""
        return self.end is not None and ended_at is not None and ended_at > self.end


NO_WINDOW = RolloutWindow(end=None)


def parse_window_end(value: Any) -> datetime | None:
    """An ISO 8601 moment with its offset (``Z`` included), or None for an empty value.

    A time without an offset is refused: "02:00" means a different moment in every zone.
    """
    if value is None or (isinstance(value, str) and not value.strip()) or value == "None":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"window_end: {value.isoformat()!r} has no time zone offset (add Z or +01:00)")
        return value
    text = str(value).strip()
    moment = parse_iso8601(text)
    if moment is None:
        raise ValueError(f"window_end: {value!r} is not an ISO 8601 moment like 2026-12-16T02:00:00+01:00")
    if not (text.endswith(("Z", "z")) or "+" in text[10:] or "-" in text[10:]):
        raise ValueError(f"window_end: {value!r} has no time zone offset (add Z or +01:00)")
    return moment


def cutoff_problem(value: Any) -> str | None:
    """Why a ``window_cutoff_minutes`` value is invalid, or None (None/empty means the default)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_CUTOFF_MINUTES:
        return f"window_cutoff_minutes: {value!r} is not a number of minutes from 0 to {MAX_CUTOFF_MINUTES}"
    return None


def window_param_problems(params: dict[str, Any]) -> list[str]:
    """Every bad window value of a trigger form, one sentence each."""
    problems = []
    try:
        parse_window_end(params.get("window_end"))
    except ValueError as exc:
        problems.append(str(exc))
    cutoff = cutoff_problem(params.get("window_cutoff_minutes"))
    if cutoff:
        problems.append(cutoff)
    return problems


def window_results(window: RolloutWindow, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The window's evidence for a rollout's results file; None when the run had no window.

    An overrun is judged on ``observed_at`` (when patchflow saw the outcome, on patchflow's
    clock, the clock the window is on), never on the patching service's ``ended_at``.
    """
    if window.end is None:
        return None
    last_start = window.last_start()
    overruns = []
    for row in rows:
        observed = parse_iso8601(row.get("observed_at"))
        if window.ended_after(observed) and observed is not None:
            overruns.append(
                {
                    "server_id": row["server_id"],
                    "state": row["state"],
                    "observed_at": utc_text(observed),
                    "minutes_after_window": round((observed - window.end).total_seconds() / 60, 1),
                }
            )
    return {
        "end": utc_text(window.end),
        "last_start": utc_text(last_start) if last_start else None,
        "cutoff_seconds": window.cutoff_seconds,
        "not_started": [
            r["server_id"] for r in rows if r["state"] == "not_attempted" and r.get("reason") == WINDOW_CLOSED
        ],
        "ended_after_window": overruns,
    }


def merge_window_results(results: Iterable[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The run's window evidence (audit ``run.window``) from every package's results; None: no window."""
    merged: dict[str, Any] | None = None
    for result in results:
        block = (result or {}).get("window")
        if not block:
            continue
        if merged is None:
            merged = {k: block[k] for k in ("end", "last_start", "cutoff_seconds")}
            merged |= {"not_started": [], "ended_after_window": []}
        merged["not_started"] += block.get("not_started") or []
        merged["ended_after_window"] += block.get("ended_after_window") or []
    return merged


def window_lines(block: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The run report's lines about the window (label, text); none when the run had no window."""
    if not block:
        return []
    overruns = block.get("ended_after_window") or []
    not_started = block.get("not_started") or []
    return [
        ("Window ends", str(block.get("end"))),
        ("Last start allowed", str(block.get("last_start"))),
        (f"Not started, {WINDOW_CLOSED}", ", ".join(not_started) if not_started else "none"),
        (
            "Ended after the window",
            ", ".join(f"{o['server_id']} (+{o['minutes_after_window']:g} min)" for o in overruns) or "none",
        ),
    ]
