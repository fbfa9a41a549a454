"""Patch Tuesday maintenance windows: nth weekday of a month + an offset, in local time (framework-free).

Why not cron: "second Tuesday + 7 days" can be the 2nd or the 3rd Wednesday, and an offset of
up to ±30 days moves the window into the previous or next month. A window is computed per
*anchor month* (the month whose nth weekday it follows) and never depends on the clock.

- The start is a local wall-clock time in an IANA time zone, so a 22:00 Europe/Berlin window
  stays at 22:00 across DST changes (20:00 UTC in summer, 21:00 UTC in winter). A start time
  that does not exist that night (spring forward) moves forward by the gap (pendulum's rule).
- The window lasts ``duration_minutes`` of real time from the start.
- Blackouts (change freezes) are inclusive local date ranges. A window touching a blackout
  date is either **skipped** (that month has no window) or **postponed** to the first later
  day it does not touch, same local time — but never to or past the next month's nominal
  window day (then it is skipped). Which one is ``on_blackout``.

``PatchCalendar.from_dict`` reads the plain-dict form used by the ring file and the
timetable's serialization, naming every bad value at once.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import pendulum

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", -1: "last"}
MAX_OFFSET_DAYS = 30
MAX_DURATION_MINUTES = 24 * 60
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$", re.ASCII)
DASH = "\u2013"
_SEARCH_MONTHS = 240
"""How far ahead (in anchor months) a window is looked for before giving up (all blacked out)."""


class BlackoutPolicy(StrEnum):
    """What a blackout (change freeze) does to a window that touches it."""

    SKIP = "skip"
    """That month has no window."""
    POSTPONE = "postpone"
    """Moved to the first later day clear of every blackout (before the next month's window day)."""


class CalendarError(ValueError):
    """Invalid schedule settings; ``problems`` holds one sentence per bad value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Blackout:
    """A change freeze: local dates ``first`` to ``last``, both included."""

    first: date
    last: date
    name: str = ""

    def touches(self, days: tuple[date, date]) -> bool:
        return not (days[1] < self.first or days[0] > self.last)

    def text(self) -> str:
        span = self.first.isoformat() if self.first == self.last else f"{self.first}{DASH}{self.last}"
        return f"{span} ({self.name})" if self.name else span


@dataclass(frozen=True)
class Window:
    """One maintenance window: aware UTC ``start`` and ``end``, and the month it belongs to."""

    start: datetime
    end: datetime
    anchor: tuple[int, int]
    postponed_from: date | None = None


@dataclass(frozen=True)
class PatchCalendar:
    """The monthly window of one ring (see the module docstring)."""

    nth: int = 2
    weekday: int = 1  # Monday = 0
    offset_days: int = 0
    start: time = time(3, 0)
    duration_minutes: int = 240
    timezone: str = "UTC"
    blackouts: tuple[Blackout, ...] = field(default_factory=tuple)
    on_blackout: BlackoutPolicy = BlackoutPolicy.SKIP

    # --- dates -----------------------------------------------------------------------------

    def anchor_day(self, year: int, month: int) -> date:
        """The nth weekday of the month (``nth=-1``: the last one)."""
        days = [
            d
            for d in calendar.Calendar().itermonthdates(year, month)
            if d.month == month and d.weekday() == self.weekday
        ]
        return days[self.nth - 1] if self.nth > 0 else days[-1]

    def nominal_day(self, year: int, month: int) -> date:
        """The anchor day + the offset: the local day the window starts, before any blackout."""
        return self.anchor_day(year, month) + timedelta(days=self.offset_days)

    def _window_on(self, day: date, anchor: tuple[int, int]) -> Window:
        local = pendulum.datetime(
            day.year, day.month, day.day, self.start.hour, self.start.minute, tz=self.timezone
        )
        start = local.in_timezone("UTC")
        return Window(start=start, end=start + timedelta(minutes=self.duration_minutes), anchor=anchor)

    def _local_days(self, window: Window) -> tuple[date, date]:
        tz = pendulum.timezone(self.timezone)
        last = window.end - timedelta(microseconds=1)
        return window.start.astimezone(tz).date(), last.astimezone(tz).date()

    def blocked_by(self, window: Window) -> Blackout | None:
        days = self._local_days(window)
        return next((b for b in self.blackouts if b.touches(days)), None)

    def window_for(self, year: int, month: int) -> Window | None:
        """The window of one anchor month, after blackouts; None when a blackout skips it."""
        anchor = (year, month)
        day = self.nominal_day(year, month)
        window = self._window_on(day, anchor)
        if self.blocked_by(window) is None:
            return window
        if self.on_blackout is BlackoutPolicy.SKIP:
            return None
        ny, nm = _next_month(year, month)
        limit = self.nominal_day(ny, nm)
        moved = day + timedelta(days=1)
        while moved < limit:
            window = self._window_on(moved, anchor)
            if self.blocked_by(window) is None:
                return Window(window.start, window.end, anchor, postponed_from=day)
            moved += timedelta(days=1)
        return None

    def windows_from(self, moment: datetime) -> Iterator[Window]:
        """Windows in time order, starting with anchor months that could end after ``moment``."""
        year, month = moment.year, moment.month
        for _ in range(3):  # an offset of -30 days (or a long window) reaches back two months
            year, month = _previous_month(year, month)
        for _ in range(_SEARCH_MONTHS):
            window = self.window_for(year, month)
            if window is not None:
                yield window
            year, month = _next_month(year, month)

    def next_window(
        self, *, start_after: datetime | None = None, end_after: datetime | None = None
    ) -> Window | None:
        """The first window starting strictly after ``start_after`` and ending after ``end_after``."""
        reference = (
            max(m for m in (start_after, end_after) if m is not None) if (start_after or end_after) else None
        )
        if reference is None:
            raise ValueError("next_window needs start_after or end_after")
        for window in self.windows_from(reference):
            if start_after is not None and window.start <= start_after:
                continue
            if end_after is not None and window.end <= end_after:
                continue
            return window
        return None

    def cycle_of(self, moment: datetime) -> str:
        """The patch cycle (``YYYY-MM``) in effect at a moment: the month of the latest anchor day
        (e.g. Patch Tuesday, offset not applied) on or before the moment's local date. The same for
        every ring on the same nth weekday, whatever its offset: a manual run of staging the day
        after dev's window belongs to dev's cycle."""
        local = pendulum.instance(moment).in_timezone(self.timezone).date()
        year, month = local.year, local.month
        if self.anchor_day(year, month) > local:
            year, month = _previous_month(year, month)
        return f"{year:04d}-{month:02d}"

    def window_cycle(self, start: datetime) -> str:
        """The cycle of the window starting at ``start`` (a scheduled run): its anchor month."""
        for window in self.windows_from(start):
            if window.start == start:
                return f"{window.anchor[0]:04d}-{window.anchor[1]:02d}"
            if window.start > start:
                break
        return self.cycle_of(start)

    # --- words -----------------------------------------------------------------------------

    def summary(self) -> str:
        """E.g. ``2nd Tuesday + 7 days, 22:00\u201302:00 Europe/Berlin`` (an en dash between the times)."""
        when = f"{ORDINALS[self.nth]} {WEEKDAYS[self.weekday].capitalize()}"
        if self.offset_days:
            sign = "+" if self.offset_days > 0 else "-"
            days = abs(self.offset_days)
            when += f" {sign} {days} day{'s' if days != 1 else ''}"
        end = datetime.combine(date(2000, 1, 1), self.start) + timedelta(minutes=self.duration_minutes)
        return f"{when}, {self.start:%H:%M}{DASH}{end:%H:%M} {self.timezone}"

    def description(self) -> str:
        """The summary plus what change freezes do."""
        if not self.blackouts:
            return self.summary()
        freezes = ", ".join(b.text() for b in self.blackouts)
        effect = (
            "a window touching one is skipped"
            if self.on_blackout is BlackoutPolicy.SKIP
            else "a window touching one moves to the first clear day after it"
        )
        return f"{self.summary()}; change freezes {freezes}: {effect}"

    # --- plain-dict form -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "nth": self.nth,
            "weekday": WEEKDAYS[self.weekday],
            "offset_days": self.offset_days,
            "start": f"{self.start:%H:%M}",
            "duration_minutes": self.duration_minutes,
            "timezone": self.timezone,
            "blackouts": [
                {"from": b.first.isoformat(), "to": b.last.isoformat(), "name": b.name}
                for b in self.blackouts
            ],
            "on_blackout": self.on_blackout.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "schedule") -> PatchCalendar:
        """Read the plain-dict form; ``CalendarError`` names every bad value (prefixed ``where``)."""
        parsed, problems = parse_calendar(data, where=where)
        if problems or parsed is None:
            raise CalendarError(problems)
        return parsed


CALENDAR_KEYS = (
    "nth",
    "weekday",
    "offset_days",
    "start",
    "duration_minutes",
    "timezone",
    "blackouts",
    "on_blackout",
)


def parse_calendar(data: Any, *, where: str = "schedule") -> tuple[PatchCalendar | None, list[str]]:
    """The calendar, and one problem per bad value (``where.key: …``); never stops at the first."""
    if not isinstance(data, Mapping):
        return None, [f"{where}: expected a mapping of schedule settings, got {type(data).__name__}"]
    problems = [
        f"{where}.{key}: unknown setting (known: {', '.join(CALENDAR_KEYS)})"
        for key in data
        if key not in CALENDAR_KEYS
    ]
    default = PatchCalendar()

    def integer(key: str, low: int, high: int, fallback: int, allowed: str = "") -> int:
        value = data.get(key, fallback)
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        problems.append(
            f"{where}.{key}: {value!r} is not {allowed or f'a whole number from {low} to {high}'}"
        )
        return fallback

    nth = data.get("nth", default.nth)
    if not (isinstance(nth, int) and not isinstance(nth, bool) and nth in ORDINALS):
        problems.append(f"{where}.nth: {nth!r} is not 1, 2, 3, 4 or -1 (the last)")
        nth = default.nth
    weekday_raw = data.get("weekday", WEEKDAYS[default.weekday])
    weekday = (
        WEEKDAYS.index(weekday_raw.lower())
        if isinstance(weekday_raw, str) and weekday_raw.lower() in WEEKDAYS
        else None
    )
    if weekday is None:
        problems.append(f"{where}.weekday: {weekday_raw!r} is not a weekday name ({', '.join(WEEKDAYS)})")
        weekday = default.weekday
    offset = integer("offset_days", -MAX_OFFSET_DAYS, MAX_OFFSET_DAYS, 0)
    duration = integer("duration_minutes", 1, MAX_DURATION_MINUTES, default.duration_minutes)
    start_raw = data.get("start", f"{default.start:%H:%M}")
    match = _HHMM.match(start_raw) if isinstance(start_raw, str) else None
    if match is None:
        hint = (
            " (quote it: YAML reads an unquoted 22:00 as the number 1320)"
            if isinstance(start_raw, int)
            else ""
        )
        problems.append(f"{where}.start: {start_raw!r} is not a local time HH:MM (00:00 to 23:59){hint}")
        start = default.start
    else:
        start = time(int(match.group(1)), int(match.group(2)))
    tz = data.get("timezone", default.timezone)
    if not _is_timezone(tz):
        problems.append(f"{where}.timezone: {tz!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)")
        tz = default.timezone
    policy_raw = data.get("on_blackout", default.on_blackout.value)
    try:
        policy = BlackoutPolicy(policy_raw)
    except ValueError:
        problems.append(
            f"{where}.on_blackout: {policy_raw!r} is not one of {', '.join(p.value for p in BlackoutPolicy)}"
        )
        policy = default.on_blackout
    blackouts = _blackouts(data.get("blackouts") or [], f"{where}.blackouts", problems)
    cal = PatchCalendar(nth, weekday, offset, start, duration, tz, tuple(blackouts), policy)
    return (None if problems else cal), problems


def _blackouts(raw: Any, where: str, problems: list[str]) -> list[Blackout]:
    if not isinstance(raw, list):
        problems.append(f"{where}: expected a list of dates or {{from, to, name}} ranges, got {raw!r}")
        return []
    found = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if isinstance(item, str | date):
            first = last = _day(item, here, problems)
            name = ""
        elif isinstance(item, Mapping):
            unknown = [k for k in item if k not in ("from", "to", "name")]
            problems.extend(f"{here}.{k}: unknown key (known: from, to, name)" for k in unknown)
            first = _day(item.get("from"), f"{here}.from", problems)
            last = _day(item.get("to", item.get("from")), f"{here}.to", problems)
            name = str(item.get("name") or "")
            if first and last and last < first:
                problems.append(f"{here}: 'to' {last} is before 'from' {first}")
                continue
        else:
            problems.append(f"{here}: {item!r} is not a date (YYYY-MM-DD) or a {{from, to, name}} range")
            continue
        if first and last:
            found.append(Blackout(first, last, name))
    return found


def _day(value: Any, where: str, problems: list[str]) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        problems.append(f"{where}: {value!r} is not a date YYYY-MM-DD")
        return None


def _is_timezone(name: Any) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        pendulum.timezone(name)
    except Exception:  # pendulum raises its own InvalidTimezone (a KeyError/ValueError subclass by version)
        return False
    return True


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)
