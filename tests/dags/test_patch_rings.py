"""The ring DAGs as the scheduler and the UI see them: one per ring, patch_fleet's tasks, the
schedule in words, the gate first where a ring requires another, and a bad ring file refused."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def serialized(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def edges(dag, drop=()):
    return {(t.task_id, d) for t in dag.tasks if t.task_id not in drop for d in t.downstream_task_ids}


def test_one_dag_per_ring_with_its_schedule_in_words(dagbag):
    assert dagbag.import_errors == {}
    words = {
        dag_id: serialized(dagbag.dags[dag_id]).timetable for dag_id in dagbag.dag_ids if "ring" in dag_id
    }
    assert {k: v.summary for k, v in words.items()} == {
        "patch_ring_dev": "2nd Tuesday + 2 days, 22:00\u201302:00 Europe/Berlin",
        "patch_ring_staging": "2nd Tuesday + 7 days, 22:00\u201302:00 Europe/Berlin",
        "patch_ring_production": "2nd Tuesday + 14 days, 01:00\u201306:00 Europe/Berlin",
        "patch_ring_staging_notice": "24 h before 2nd Tuesday + 7 days, 22:00\u201302:00 Europe/Berlin",
        "patch_ring_production_notice": "24 h before 2nd Tuesday + 14 days, 01:00\u201306:00 Europe/Berlin",
    }
    assert "skipped" in words["patch_ring_staging"].description
    assert "moves to the first clear day" in words["patch_ring_production"].description


def test_a_ring_runs_patch_fleets_tasks_with_the_gate_first_when_it_requires_another(dagbag):
    fleet = dagbag.dags["patch_fleet"]
    dev, staging = dagbag.dags["patch_ring_dev"], dagbag.dags["patch_ring_staging"]
    assert edges(dev) == edges(fleet)
    assert edges(staging, drop={"ring_gate"}) == edges(fleet)
    assert staging.get_task("ring_gate").downstream_task_ids == {"preflight"}
    assert not staging.get_task("ring_gate").upstream_task_ids
    assert dev.params["groups"] == ["Legacy"] and dev.params["window_cutoff_minutes"] == 30
    assert fleet.params["window_end"] is None and fleet.params["window_cutoff_minutes"] is None


def test_an_invalid_ring_file_is_an_import_error_naming_every_bad_value(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    bad = tmp_path / "rings.yaml"
    bad.write_text(
        "rings:\n"
        "  - {name: dev, schedule: {offset_days: 40, start: '22:00', timezone: Europe/Berlin}}\n"
        "  - {name: prod, schedule: {start: '25:00'}, requires: qa}\n"
    )
    monkeypatch.setenv("PATCHFLOW_RINGS", str(bad))
    bag = DagBag(dag_folder=str(ROOT / "dags" / "patch_rings.py"))
    (error,) = bag.import_errors.values()
    assert "rings[0] (dev).schedule.offset_days: 40 is not a whole number from -30 to 30" in error
    assert "rings[1] (prod).schedule.start: '25:00' is not a local time HH:MM" in error
    assert "rings[1] (prod).requires: 'qa' is not an earlier ring (the rings before it are: dev)" in error


def test_ring_dags_are_created_paused(dagbag):
    ring_dags = [d for d in dagbag.dags.values() if d.dag_id.startswith("patch_ring_")]
    assert ring_dags and all(d.is_paused_upon_creation is True for d in ring_dags)
