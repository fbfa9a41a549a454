"""Maintenance windows in the rollout: nothing starts once the window is closing; in-flight
servers finish and their overrun is on record; without a window nothing changes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from include.patching.watch import WatchState
from include.patching.window import (
    NO_WINDOW,
    WINDOW_CLOSED,
    RolloutWindow,
    merge_window_results,
    parse_window_end,
    window_param_problems,
)
from tests.patching.memory_api import MemoryApi, make_rollout, ours, report

SERVERS = ["va1demoapp01", "va1demoapp02", "va1demoapp03", "va1demoapp04"]


def windowed_rollout(tmp_path, api, window, clock):
    rollout = make_rollout(tmp_path, api, max_concurrency=2)
    rollout.config = replace(rollout.config, window=window)
    rollout.now = lambda: clock["now"]
    return rollout


def test_a_window_closing_mid_rollout_leaves_the_rest_not_attempted_and_follows_the_started(tmp_path):
    real = datetime.now(UTC)
    window = RolloutWindow(end=real - timedelta(minutes=1), cutoff_seconds=1800)
    clock = {"now": real - timedelta(hours=1)}
    api = MemoryApi(SERVERS)
    rollout = windowed_rollout(tmp_path, api, window, clock)
    started = rollout.fill()
    assert started == SERVERS[:2]
    clock["now"] = real - timedelta(minutes=20)  # 19 minutes left: less than the 30-minute cutoff
    api.start_queued()
    api.complete_all()
    rollout.apply({sid: report(WatchState.COMPLETED, execution=ours(api, sid)) for sid in started})
    assert rollout.fill() == [] and rollout.finished
    rollout.finish(tmp_path / "results.json")
    results = json.loads((tmp_path / "results.json").read_text())
    rows = {r["server_id"]: r for r in results["servers"]}
    assert {s: rows[s]["state"] for s in SERVERS} == {
        "va1demoapp01": "patched",
        "va1demoapp02": "patched",
        "va1demoapp03": "not_attempted",
        "va1demoapp04": "not_attempted",
    }
    assert rows["va1demoapp03"]["reason"] == rows["va1demoapp04"]["reason"] == WINDOW_CLOSED
    assert api.executes("va1demoapp03") == api.executes("va1demoapp04") == 0
    api.land_all()
    assert not api.any_in_maintenance()  # put into maintenance ahead of their wave, then released
    block = results["window"]
    assert block["not_started"] == ["va1demoapp03", "va1demoapp04"]
    assert [o["server_id"] for o in block["ended_after_window"]] == started  # observed after the end
    assert all(o["minutes_after_window"] >= 1 for o in block["ended_after_window"])


def test_a_window_already_closing_starts_nothing(tmp_path):
    now = datetime.now(UTC)
    api = MemoryApi(SERVERS)
    rollout = windowed_rollout(tmp_path, api, RolloutWindow(now + timedelta(minutes=10), 1800), {"now": now})
    assert rollout.fill() == [] and rollout.finished
    rollout.finish(tmp_path / "results.json")
    assert not api.calls_of("execute_package") and not api.calls_of("start_maintenance")


def test_without_a_window_the_rollout_is_unchanged(tmp_path):
    api = MemoryApi(SERVERS)
    rollout = make_rollout(tmp_path, api, max_concurrency=10)
    assert rollout.config.window == NO_WINDOW
    assert rollout.fill() == SERVERS
    rollout.time_out_in_flight("test")
    rollout.finish(tmp_path / "results.json")
    assert json.loads((tmp_path / "results.json").read_text())["window"] is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-16T02:00:00+01:00", datetime(2026, 12, 16, 1, 0, tzinfo=UTC)),
        ("2026-12-16T01:00:00Z", datetime(2026, 12, 16, 1, 0, tzinfo=UTC)),
        ("", None),
        (None, None),
        ("None", None),
    ],
)
def test_window_end_accepts_iso_8601_with_an_offset_or_nothing(text, expected):
    assert parse_window_end(text) == expected


def test_every_bad_window_value_is_named():
    problems = window_param_problems({"window_end": "2026-12-16T02:00", "window_cutoff_minutes": -5})
    assert problems == [
        "window_end: '2026-12-16T02:00' has no time zone offset (add Z or +01:00)",
        "window_cutoff_minutes: -5 is not a number of minutes from 0 to 1440",
    ]
    assert window_param_problems({"window_end": "tonight"}) == [
        "window_end: 'tonight' is not an ISO 8601 moment like 2026-12-16T02:00:00+01:00"
    ]
    assert window_param_problems({"window_end": None, "window_cutoff_minutes": None}) == []


def test_the_run_evidence_merges_every_package():
    a = {
        "window": {
            "end": "E",
            "last_start": "L",
            "cutoff_seconds": 60,
            "not_started": ["x"],
            "ended_after_window": [],
        }
    }
    b = {
        "window": {
            "end": "E",
            "last_start": "L",
            "cutoff_seconds": 60,
            "not_started": ["y"],
            "ended_after_window": [{"server_id": "z"}],
        }
    }
    merged = merge_window_results([a, None, b])
    assert merged["not_started"] == ["x", "y"] and merged["ended_after_window"] == [{"server_id": "z"}]
    assert merge_window_results([None, {"window": None}]) is None


def test_the_run_report_shows_the_window_and_its_overruns():
    from include.patching.window import window_lines

    block = {
        "end": "2026-12-16T01:00:00Z",
        "last_start": "2026-12-16T00:30:00Z",
        "cutoff_seconds": 1800,
        "not_started": ["va1web03"],
        "ended_after_window": [{"server_id": "va1web02", "minutes_after_window": 12.5}],
    }
    assert window_lines(block) == [
        ("Window ends", "2026-12-16T01:00:00Z"),
        ("Last start allowed", "2026-12-16T00:30:00Z"),
        ("Not started, window closed", "va1web03"),
        ("Ended after the window", "va1web02 (+12.5 min)"),
    ]
    assert window_lines(None) == []
