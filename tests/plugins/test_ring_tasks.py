"""What a run takes from its context: its window end, its patch cycle, the window a heads-up is about."""

from __future__ import annotations

from datetime import time
from types import SimpleNamespace

import pendulum

from include.patching.patch_calendar import PatchCalendar
from patchflow.ring_tasks import patch_cycle, scheduled_window_end, upcoming_window

STAGING = PatchCalendar(offset_days=7, start=time(22, 0), duration_minutes=240, timezone="Europe/Berlin")


def context(run_type: str, start=None, end=None, run_after=None) -> dict:
    return {
        "dag_run": SimpleNamespace(run_type=run_type, run_after=run_after),
        "data_interval_start": start,
        "data_interval_end": end,
    }


def utc(*args):
    return pendulum.datetime(*args, tz="UTC")


def test_a_scheduled_ring_run_takes_its_window_end_from_the_data_interval():
    ctx = context("scheduled", utc(2026, 12, 15, 21), utc(2026, 12, 16, 1))
    assert scheduled_window_end(ctx) == "2026-12-16T01:00:00+00:00"
    assert patch_cycle(STAGING, ctx) == "2026-12"


def test_patch_fleets_cron_runs_and_manual_runs_have_no_window():
    assert scheduled_window_end(context("scheduled", utc(2026, 12, 8, 3), utc(2026, 12, 8, 3))) is None
    assert scheduled_window_end(context("manual", run_after=utc(2026, 12, 11))) is None


def test_a_manual_run_belongs_to_the_patch_tuesday_in_effect():
    assert patch_cycle(STAGING, context("manual", run_after=utc(2026, 12, 11, 9))) == "2026-12"
    assert patch_cycle(STAGING, context("manual", run_after=utc(2026, 12, 7, 9))) == "2026-11"


def test_a_heads_up_is_about_the_window_its_interval_leads_to():
    ctx = context("scheduled", utc(2026, 12, 14, 21), utc(2026, 12, 15, 21))
    assert upcoming_window(STAGING, ctx) == (utc(2026, 12, 15, 21), utc(2026, 12, 16, 1))
