"""A run scoped by CLC custom-field value patches only the servers whose fields match: preflight,
inventory and classify against the in-process simulator, then the rollout of the plan they wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from patchflow import tasks
from tests.plugins.cloud import fleet_with
from tests.plugins.operators.conftest import Driver

DAG, RUN = "patch_fleet", "manual__t1"
FIELDS = {
    "va1demoweb01": {"custom_fields": {"Environment": "staging"}},
    "va1demoweb02": {"custom_fields": {"Environment": "Production"}},
    "va1demodb01": {"custom_fields": {"Environment": " QA "}},
}  # de1demoapp01 has no custom field at all


@pytest.fixture
def fleet(start_cloud, tmp_path, monkeypatch):
    monkeypatch.setenv("PATCHFLOW_ARTIFACTS", str(tmp_path / "artifacts"))
    return start_cloud(fleet_with(**FIELDS))


def plan(params: dict) -> dict:
    settings = tasks.preflight(params, conn_id="clc_default")
    ref = tasks.inventory(settings, conn_id="clc_default", dag_id=DAG, run_id=RUN)
    return tasks.classify_servers(settings, ref, dag_id=DAG, run_id=RUN)


def test_only_servers_whose_field_matches_are_patched(fleet):
    ref = plan({"custom_fields": {"environment": ["Staging", "qa"]}})
    rows = {r["id"]: r for r in json.loads(Path(ref["plan_path"]).read_text())["servers"]}
    assert {sid: r["state"] for sid, r in rows.items()} == {
        "va1demoweb01": None,
        "va1demodb01": None,
        "va1demoweb02": "skipped_filtered",
        "de1demoapp01": "skipped_filtered",
    }
    assert (
        rows["va1demoweb02"]["reason"] == "custom field 'environment' is 'Production', not one of qa, staging"
    )
    assert rows["de1demoapp01"]["reason"] == "custom field 'environment' not set, not one of qa, staging"
    out = Driver(plan_path=ref["plan_path"]).run()
    assert out["counts"]["total"] == 2
    assert {sid: fleet.executions_started(sid) for sid in rows} == {
        "va1demoweb01": 1,
        "va1demodb01": 1,
        "va1demoweb02": 0,
        "de1demoapp01": 0,
    }


def test_a_field_no_server_has_is_named_with_a_hint_before_anything_is_touched(fleet):
    with pytest.raises(AirflowFailException) as err:
        plan({"custom_fields": {"Enviroment": "qa", "Ring": "dev"}})
    lines = [line.strip() for line in str(err.value).splitlines()[1:]]
    assert lines == [
        "- custom_fields: 'Enviroment' is not a custom field of any server of alias DEMO "
        "(did you mean 'Environment'?); the alias has Environment",
        "- custom_fields: 'Ring' is not a custom field of any server of alias DEMO; "
        "the alias has Environment",
    ]
    assert not fleet.sent(method="POST", containing="/v2/operations")
