"""The audit task: the run's final outcome goes into the run's note and ends the task log in one line."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

from patchflow.tasks import audit
from tests.plugins.fake_airflow_api import FakeAirflowApi


def plan_row(sid: str, state: str, package: str | None = None) -> dict:
    return {"id": sid, "name": sid.upper(), "data_center": "VA1", "os": "centOS6_64Bit", "os_family": "linux",
            "package_key": package, "package_id": None, "state": state, "reason": "why not"}  # fmt: skip


def test_a_dry_runs_audit_writes_the_final_note_and_ends_with_one_summary_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATCHFLOW_REPORTS", str(tmp_path / "reports"))
    plan = tmp_path / "artifacts" / "plan.json"
    plan.parent.mkdir()
    planned = [plan_row(sid, "planned_dry_run", "linux_yum") for sid in ("va1a", "va1b")]
    rows = [*planned, plan_row("va1c", "skipped_not_running")]
    plan.write_text(json.dumps({"account_alias": "DEMO", "settings": {"dry_run": True}, "servers": rows}))
    dag_run = SimpleNamespace(dag_id="patch_fleet", run_id="manual__dry", run_type="manual", start_date=None)
    context = {"dag_run": dag_run, "dag": SimpleNamespace(dag_id="patch_fleet"), "run_id": "manual__dry"}
    with FakeAirflowApi() as api, caplog.at_level(logging.INFO, logger="patchflow"):
        api.notes[("patch_fleet", "manual__dry")] = "patchflow: 3 in progress\nCHG-1234"
        monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", api.connection())
        audit({"plan_path": str(plan)}, context=context, outlet_events=None, asset=None)
    assert api.notes[("patch_fleet", "manual__dry")] == "patchflow: 2 planned (dry run) · 1 skipped\nCHG-1234"
    last = [r.getMessage() for r in caplog.records if r.name == "patchflow.tasks"][-1]
    assert last.startswith("Audit: 2 planned (dry run) · 1 skipped; validation passed; report ")
    assert last.endswith("report.html") and "\n" not in last
