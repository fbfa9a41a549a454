"""The benchmark's arithmetic over the simulator's timeline."""

from __future__ import annotations

from launcher.bench_metrics import (
    early_done,
    fleet_ideal,
    list_schedule,
    peak_concurrency,
    timeline_figures,
    uncovered_seconds,
)


def test_list_schedule_fills_the_first_free_slot():
    assert list_schedule([4, 1, 1, 1, 1], 2) == 4
    assert list_schedule([3, 3, 3], 2) == 6
    assert list_schedule([], 5) == 0


def test_fleet_ideal_schedules_every_package_on_the_same_slots_in_start_order():
    # two packages of two 10 s servers each, one fleet-wide slot: 40 s, not 20 s side by side
    jobs = [(0.0, 10.0), (1.0, 10.0), (0.5, 10.0), (1.5, 10.0)]
    assert fleet_ideal(jobs, 1) == 40
    assert fleet_ideal(jobs, 2) == 20
    assert fleet_ideal([(2.0, 1.0), (0.0, 5.0), (1.0, 1.0)], 2) == 5  # the order key decides


def test_peak_concurrency_counts_overlaps_not_touching_ends():
    assert peak_concurrency([(0, 10), (10, 20), (20, 30)]) == 1
    assert peak_concurrency([(0, 10), (5, 15), (6, 7), (14, 20)]) == 3
    assert peak_concurrency([]) == 0


def test_uncovered_seconds_with_open_ends_and_overlaps():
    assert uncovered_seconds((10, 20), [(None, None)]) == 0
    assert uncovered_seconds((10, 20), [(5, 12), (11, 15)]) == 5
    assert uncovered_seconds((10, 20), [(12, 14), (16, None)]) == 4
    assert uncovered_seconds((10, 20), []) == 10


def _ex(start, end, completed=True):
    return {"start_wall": start, "end_wall": end, "completed": completed}


TIMELINE = {
    "now_wall": 100.0,
    "servers": {
        "a": {"executions": [_ex(10, 50)], "maintenance": [{"on_wall": 5, "off_wall": 55}]},
        "b": {"executions": [_ex(12, 40)], "maintenance": [{"on_wall": 5, "off_wall": 20}]},
        "c": {
            "executions": [_ex(60, 70, completed=False)],
            "maintenance": [{"on_wall": None, "off_wall": None}],
        },
        "other": {"executions": [_ex(0, 99)], "maintenance": []},
    },
}


def test_timeline_figures_over_the_servers_asked_for():
    figures = timeline_figures(TIMELINE, ["a", "b", "c", "never-patched"])
    assert figures.executions == 3 and figures.completed == 2
    assert figures.first_start == 10 and figures.last_end == 100  # c still runs at now_wall
    assert figures.peak_concurrency == 2
    assert figures.outside_maintenance == ["b"]


def test_early_done_is_a_done_before_the_execution_really_ended():
    assert early_done({"a": 49.0, "b": 40.0, "c": 80.0, "never-patched": 1.0}, TIMELINE) == ["a", "c"]
