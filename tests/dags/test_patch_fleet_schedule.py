"""patch_fleet's schedule: Patch Tuesday, and never an immediate run when the DAG is switched on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dag():
    """The DAG as the scheduler sees it: parsed, serialized and deserialized (no database needed)."""
    import importlib.util

    from airflow.serialization.serialized_objects import DagSerialization

    spec = importlib.util.spec_from_file_location("patch_fleet_dag", ROOT / "dags" / "patch_fleet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return DagSerialization.from_dict(DagSerialization.to_dict(module.dag))


def test_runs_on_the_second_tuesday_at_three(dag):
    from airflow.timetables.base import DataInterval, TimeRestriction

    runs, last = [], None
    for _ in range(4):
        info = dag.timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=TimeRestriction(None, None, catchup=False)
        )
        runs.append(info.run_after)
        last = DataInterval(info.run_after, info.run_after)
    for when in runs:
        assert when.weekday() == 1 and 8 <= when.day <= 14 and (when.hour, when.minute) == (3, 0), when


def test_switching_the_dag_on_does_not_patch_the_fleet_right_now(dag):
    from airflow.timetables.base import TimeRestriction

    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(dag.start_date, None, catchup=False)
    )
    assert info.run_after > datetime.now(UTC), "the first scheduled run must be the next Patch Tuesday"


def test_one_run_at_a_time(dag):
    assert dag.max_active_runs == 1 and dag.catchup is False
