"""Patch Tuesday windows: a year of them in two DST time zones, offsets, month crossings, freezes.

The expected local days are written out by hand from the 2026 calendar; the UTC offsets come
from the standard library's zoneinfo (the code under test uses pendulum), and the DST edges
are also spelled out literally.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from include.patching.patch_calendar import (
    Blackout,
    BlackoutPolicy,
    CalendarError,
    PatchCalendar,
    parse_calendar,
)

# Second Tuesdays of 2026, from a printed calendar.
PATCH_TUESDAYS_2026 = [
    date(2026, 1, 13), date(2026, 2, 10), date(2026, 3, 10), date(2026, 4, 14),
    date(2026, 5, 12), date(2026, 6, 9), date(2026, 7, 14), date(2026, 8, 11),
    date(2026, 9, 8), date(2026, 10, 13), date(2026, 11, 10), date(2026, 12, 8),
]  # fmt: skip
ZONES = ["Europe/Berlin", "America/New_York"]
OFFSETS = [-3, 2, 14, 30]


def year_of_windows(cal: PatchCalendar, year: int = 2026) -> list:
    windows, after = [], datetime(year, 1, 1, tzinfo=UTC) - timedelta(days=40)
    while len(windows) < 14:
        w = cal.next_window(start_after=after)
        windows.append(w)
        after = w.start
    return [w for w in windows if w.anchor[0] == year]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("offset", OFFSETS)
def test_a_year_of_windows_follows_patch_tuesday_plus_offset_at_local_time(zone, offset):
    cal = PatchCalendar(offset_days=offset, start=time(22, 0), duration_minutes=240, timezone=zone)
    windows = year_of_windows(cal)
    assert [w.anchor for w in windows] == [(2026, m) for m in range(1, 13)]
    for tuesday, w in zip(PATCH_TUESDAYS_2026, windows, strict=True):
        day = tuesday + timedelta(days=offset)
        expected = datetime(day.year, day.month, day.day, 22, 0, tzinfo=ZoneInfo(zone)).astimezone(UTC)
        assert w.start == expected, (tuesday, offset, zone)
        assert w.end - w.start == timedelta(hours=4)


def test_dst_edges_are_spelled_out():
    berlin = PatchCalendar(offset_days=2, start=time(22, 0), timezone="Europe/Berlin")
    ny = PatchCalendar(offset_days=-3, start=time(22, 0), timezone="America/New_York")
    # Berlin: CET (UTC+1) until 29 March, CEST (UTC+2) until 25 October
    assert berlin.window_for(2026, 3).start == datetime(2026, 3, 12, 21, 0, tzinfo=UTC)
    assert berlin.window_for(2026, 4).start == datetime(2026, 4, 16, 20, 0, tzinfo=UTC)
    assert berlin.window_for(2026, 10).start == datetime(2026, 10, 15, 20, 0, tzinfo=UTC)
    assert berlin.window_for(2026, 11).start == datetime(2026, 11, 12, 21, 0, tzinfo=UTC)
    # New York: EST (UTC-5) until 8 March, EDT (UTC-4) until 1 November
    assert ny.window_for(2026, 3).start == datetime(2026, 3, 8, 3, 0, tzinfo=UTC)  # 7 March 22:00 EST
    assert ny.window_for(2026, 4).start == datetime(2026, 4, 12, 2, 0, tzinfo=UTC)  # 11 April 22:00 EDT
    assert ny.window_for(2026, 11).start == datetime(2026, 11, 8, 3, 0, tzinfo=UTC)


def test_a_window_spanning_the_dst_change_lasts_its_real_duration():
    # 28 March 2026 22:00 CET + 6 h ends 29 March 05:00 CEST, i.e. 6 real hours
    cal = PatchCalendar(offset_days=18, start=time(22, 0), duration_minutes=360, timezone="Europe/Berlin")
    w = cal.window_for(2026, 3)
    assert w.start == datetime(2026, 3, 28, 21, 0, tzinfo=UTC)
    assert w.end == datetime(2026, 3, 29, 3, 0, tzinfo=UTC)
    assert w.end.astimezone(ZoneInfo("Europe/Berlin")).hour == 5


def test_an_offset_of_30_days_moves_the_window_into_the_next_month_and_the_year_after():
    cal = PatchCalendar(offset_days=30, start=time(1, 0), timezone="UTC")
    assert cal.window_for(2026, 1).start == datetime(2026, 2, 12, 1, 0, tzinfo=UTC)
    assert cal.window_for(2026, 2).start == datetime(2026, 3, 12, 1, 0, tzinfo=UTC)
    assert cal.window_for(2026, 12).start == datetime(2027, 1, 7, 1, 0, tzinfo=UTC)
    # asked on 1 January 2027, the next window is December 2026's (7 January), then January's
    first = cal.next_window(start_after=datetime(2027, 1, 1, tzinfo=UTC))
    assert first.anchor == (2026, 12)
    assert cal.next_window(start_after=first.start).anchor == (2027, 1)


def test_a_negative_offset_reaches_into_the_previous_month():
    cal = PatchCalendar(offset_days=-30, start=time(3, 0), timezone="UTC")
    assert cal.window_for(2026, 3).start == datetime(2026, 2, 8, 3, 0, tzinfo=UTC)
    assert cal.next_window(start_after=datetime(2026, 2, 1, tzinfo=UTC)).anchor == (2026, 3)


def test_a_blackout_skips_the_month_when_the_policy_is_skip():
    freeze = Blackout(date(2026, 12, 1), date(2027, 1, 3), "year-end freeze")
    cal = PatchCalendar(offset_days=14, start=time(22, 0), timezone="Europe/Berlin", blackouts=(freeze,))
    assert cal.window_for(2026, 12) is None
    after_november = cal.next_window(start_after=cal.window_for(2026, 11).start)
    assert after_november.anchor == (2027, 1)
    assert after_november.start == datetime(2027, 1, 26, 21, 0, tzinfo=UTC)  # 12 Jan + 14 d, CET


def test_a_blackout_postpones_to_the_first_clear_day_when_the_policy_is_postpone():
    freeze = Blackout(date(2026, 12, 20), date(2026, 12, 23))
    cal = PatchCalendar(
        offset_days=14,
        start=time(22, 0),
        timezone="Europe/Berlin",
        blackouts=(freeze,),
        on_blackout=BlackoutPolicy.POSTPONE,
    )
    w = cal.window_for(2026, 12)  # nominal 22 December
    assert w.start == datetime(2026, 12, 24, 21, 0, tzinfo=UTC) and w.postponed_from == date(2026, 12, 22)


def test_a_window_ending_on_a_frozen_day_is_blocked_too():
    # 22:00 + 4 h ends on 13 January: a freeze of that day only still blocks it
    cal = PatchCalendar(
        start=time(22, 0), duration_minutes=240, blackouts=(Blackout(date(2026, 1, 14), date(2026, 1, 14)),)
    )
    assert cal.window_for(2026, 1) is None
    assert cal.window_for(2026, 2) is not None


def test_postponing_never_reaches_the_next_months_window():
    freeze = Blackout(date(2026, 1, 13), date(2026, 2, 20))
    cal = PatchCalendar(blackouts=(freeze,), on_blackout=BlackoutPolicy.POSTPONE)
    assert cal.window_for(2026, 1) is None  # would land after 10 February: skipped
    assert cal.window_for(2026, 2) is not None and cal.window_for(2026, 2).start.date() == date(2026, 2, 21)


def test_last_weekday_of_the_month():
    cal = PatchCalendar(nth=-1, weekday=4, start=time(9, 0))
    assert cal.window_for(2026, 7).start.date() == date(2026, 7, 31)


def test_words_for_the_ui():
    cal = PatchCalendar(offset_days=7, start=time(22, 0), duration_minutes=240, timezone="Europe/Berlin")
    assert cal.summary() == "2nd Tuesday + 7 days, 22:00\u201302:00 Europe/Berlin"
    assert PatchCalendar(offset_days=-1).summary() == "2nd Tuesday - 1 day, 03:00\u201307:00 UTC"
    frozen = PatchCalendar(blackouts=(Blackout(date(2026, 12, 20), date(2027, 1, 3), "year end"),))
    assert "2026-12-20\u20132027-01-03 (year end)" in frozen.description()
    assert "skipped" in frozen.description()


def test_the_dict_form_round_trips():
    cal = PatchCalendar(
        nth=3,
        weekday=2,
        offset_days=-3,
        start=time(23, 30),
        duration_minutes=90,
        timezone="America/New_York",
        blackouts=(Blackout(date(2026, 11, 26), date(2026, 11, 27), "thanksgiving"),),
        on_blackout=BlackoutPolicy.POSTPONE,
    )
    assert PatchCalendar.from_dict(cal.to_dict()) == cal


def test_every_bad_value_is_named_at_once():
    bad = {
        "nth": 5,
        "weekday": "tue",
        "offset_days": 31,
        "start": "25:00",
        "duration_minutes": 0,
        "timezone": "Mars/Olympus",
        "blackouts": ["2026-13-01", {"from": "2026-02-02", "to": "2026-01-01"}],
        "on_blackout": "ignore",
        "cron": "0 3 * * 2#2",
    }
    cal, problems = parse_calendar(bad, where="rings[0].schedule")
    assert cal is None
    named = {p.split(":")[0] for p in problems}
    assert named == {
        "rings[0].schedule.cron",
        "rings[0].schedule.nth",
        "rings[0].schedule.weekday",
        "rings[0].schedule.offset_days",
        "rings[0].schedule.start",
        "rings[0].schedule.duration_minutes",
        "rings[0].schedule.timezone",
        "rings[0].schedule.blackouts[0]",
        "rings[0].schedule.blackouts[1]",
        "rings[0].schedule.on_blackout",
    }, problems
    with pytest.raises(CalendarError, match="Mars/Olympus"):
        PatchCalendar.from_dict(bad)


def test_the_patch_cycle_is_the_release_in_effect_whatever_the_offset():
    dev = PatchCalendar(offset_days=2, timezone="Europe/Berlin")
    prod = PatchCalendar(offset_days=14, timezone="Europe/Berlin")
    # 11 December 2026: after December's Patch Tuesday (8th), before prod's window (22nd)
    moment = datetime(2026, 12, 11, 12, 0, tzinfo=UTC)
    assert dev.cycle_of(moment) == prod.cycle_of(moment) == "2026-12"
    assert dev.cycle_of(datetime(2026, 12, 7, 12, 0, tzinfo=UTC)) == "2026-11"
    # 8 December 00:30 in Berlin is already Patch Tuesday there, still the 7th in UTC
    assert dev.cycle_of(datetime(2026, 12, 7, 23, 30, tzinfo=UTC)) == "2026-12"


def test_a_scheduled_window_belongs_to_its_anchor_month_even_across_months():
    early = PatchCalendar(offset_days=-10)
    window = early.window_for(2027, 1)  # 12 Jan 2027 - 10 days = 2 January
    assert window.start.date() == date(2027, 1, 2)
    assert early.window_cycle(window.start) == "2027-01"
    late = PatchCalendar(offset_days=30)
    assert late.window_cycle(late.window_for(2026, 12).start) == "2026-12"  # runs 7 January 2027
