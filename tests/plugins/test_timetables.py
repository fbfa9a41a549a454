"""PatchTuesdayTimetable as the scheduler sees it: serialized, deserialized, asked for runs."""

from __future__ import annotations

from datetime import UTC, datetime, time
from itertools import pairwise

import pendulum
import pytest

from include.patching.patch_calendar import PatchCalendar
from patchflow import timetables
from patchflow.timetables import PatchTuesdayTimetable

BERLIN_PLUS_7 = PatchCalendar(
    offset_days=7, start=time(22, 0), duration_minutes=240, timezone="Europe/Berlin"
)


def at(*args) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz="UTC")


@pytest.fixture
def clock(monkeypatch):
    now = {"value": at(2026, 12, 1, 12)}
    monkeypatch.setattr(timetables, "_now", lambda: now["value"])
    return now


def test_the_classpath_is_the_plugin_module_and_the_plugin_registers_it():
    from airflow import plugins_manager

    assert PatchTuesdayTimetable.__module__ == "patchflow.timetables"
    registered = plugins_manager.get_timetables_plugins()
    assert registered.get("patchflow.timetables.PatchTuesdayTimetable") is PatchTuesdayTimetable


def test_a_dag_with_it_round_trips_through_serialization():
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("ring_probe", schedule=PatchTuesdayTimetable(BERLIN_PLUS_7), catchup=False) as dag:
        pass
    data = DagSerialization.to_dict(dag)
    back = DagSerialization.from_dict(data)
    assert isinstance(back.timetable, PatchTuesdayTimetable)
    assert back.timetable.calendar == BERLIN_PLUS_7
    assert back.timetable.summary == "2nd Tuesday + 7 days, 22:00\u201302:00 Europe/Berlin"
    assert back.timetable.description == back.timetable.summary
    assert PatchTuesdayTimetable.deserialize(back.timetable.serialize()) == back.timetable


def test_the_data_interval_is_the_window(clock):
    from airflow.timetables.base import TimeRestriction

    info = PatchTuesdayTimetable(BERLIN_PLUS_7).next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(None, None, catchup=False)
    )
    # 8 Dec 2026 + 7 = 15 Dec, 22:00 CET = 21:00 UTC, four hours
    assert info.run_after == at(2026, 12, 15, 21)
    assert info.data_interval.start == at(2026, 12, 15, 21) and info.data_interval.end == at(2026, 12, 16, 1)


def test_catchup_off_runs_the_open_window_for_what_is_left_and_never_a_past_one(clock):
    from airflow.timetables.base import DataInterval, TimeRestriction

    table = PatchTuesdayTimetable(BERLIN_PLUS_7)
    november = DataInterval(at(2026, 11, 17, 21), at(2026, 11, 18, 1))
    restriction = TimeRestriction(at(2026, 1, 1), None, catchup=False)
    clock["value"] = at(2026, 12, 15, 23)  # inside December's window
    info = table.next_dagrun_info(last_automated_data_interval=november, restriction=restriction)
    assert info.run_after == at(2026, 12, 15, 21)
    clock["value"] = at(2026, 12, 16, 1, 30)  # just after it: next month's (12 Jan 2027 + 7)
    info = table.next_dagrun_info(last_automated_data_interval=november, restriction=restriction)
    assert info.run_after == at(2027, 1, 19, 21)
    # paused since May: no run for the missed months
    may = DataInterval(at(2026, 5, 19, 20), at(2026, 5, 20, 0))
    info = table.next_dagrun_info(last_automated_data_interval=may, restriction=restriction)
    assert info.run_after == at(2027, 1, 19, 21)


def test_catchup_on_runs_every_window_from_the_start_date(clock):
    from airflow.timetables.base import TimeRestriction

    table = PatchTuesdayTimetable(BERLIN_PLUS_7)
    restriction = TimeRestriction(at(2026, 6, 1), at(2026, 9, 1), catchup=True)
    runs, last = [], None
    while (
        info := table.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
    ) is not None:
        runs.append(info.run_after.date().isoformat())
        last = info.data_interval
    assert runs == ["2026-06-16", "2026-07-21", "2026-08-18"]


def test_a_manual_run_gets_a_point_interval():
    moment = at(2026, 12, 2, 10)
    interval = PatchTuesdayTimetable(BERLIN_PLUS_7).infer_manual_data_interval(run_after=moment)
    assert interval.start == interval.end == moment


def test_settings_can_be_given_as_keywords_and_bad_ones_are_named():
    assert PatchTuesdayTimetable(offset_days=7, start="22:00", timezone="Europe/Berlin").calendar == (
        PatchCalendar(offset_days=7, start=time(22, 0), timezone="Europe/Berlin")
    )
    with pytest.raises(ValueError, match="offset_days: 45"):
        PatchTuesdayTimetable(offset_days=45)


def test_runs_are_spaced_by_a_month(clock):
    from airflow.timetables.base import TimeRestriction

    table = PatchTuesdayTimetable(PatchCalendar(offset_days=30))
    last, starts = None, []
    for _ in range(13):
        info = table.next_dagrun_info(
            last_automated_data_interval=last, restriction=TimeRestriction(None, None, catchup=False)
        )
        starts.append(info.run_after)
        last = info.data_interval
    gaps = {(b - a).days for a, b in pairwise(starts)}
    assert gaps <= {28, 35} and datetime(2026, 12, 1, tzinfo=UTC) < starts[0] < datetime(
        2027, 1, 8, tzinfo=UTC
    )
