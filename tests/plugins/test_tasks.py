"""The TaskFlow task bodies of patch_fleet (``patchflow.tasks``), called as plain functions with
small real inputs: the simulator in-process for the CLC calls, artifacts and reports in tmp_path.
``preflight`` has its own module (test_preflight.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.artifacts import run_folder
from patchflow import tasks
from tests.plugins.cloud import WINDOWS, Cloud

DAG, RUN = "patch_fleet", "manual__2026-12-01T10:00:00+00:00"
FLEET: dict[str, dict[str, Any]] = {
    "va1demoweb01": {"group": "Web"},
    "va1demoweb02": {"group": "Web", "maintenance": True},
    "va1demoold01": {"group": "Legacy", "os": "ubuntu14_64Bit", "patches": []},
    "va1demooff01": {"group": "Web", "power_state": "stopped"},
    "va1demotpl01": {"group": "Templates", "is_template": True},
    "va1demowin01": {"group": "Win", "os": WINDOWS, "patches": []},
    "de1demoapp01": {"dc": "DE1", "group": "App"},
}


@pytest.fixture
def fleet(start_cloud, tmp_path, monkeypatch) -> Cloud:
    monkeypatch.setenv("PATCHFLOW_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("PATCHFLOW_REPORTS", str(tmp_path / "reports"))
    return start_cloud(FLEET)


def settings(**params: Any) -> dict[str, Any]:
    return tasks.preflight(params, conn_id="clc_default")


def inventory(run_settings: dict[str, Any]) -> dict[str, Any]:
    return tasks.inventory(run_settings, conn_id="clc_default", dag_id=DAG, run_id=RUN)


def plan_of(run_settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """classify_servers' XCom and the plan artifact it wrote."""
    ref = tasks.classify_servers(run_settings, inventory(run_settings), dag_id=DAG, run_id=RUN)
    return ref, json.loads(Path(ref["plan_path"]).read_text())


def test_inventory_writes_every_server_in_scope_and_returns_a_reference(fleet, tmp_path):
    ref = inventory(settings())
    path = run_folder(tmp_path / "artifacts", DAG, RUN) / "inventory.json"
    assert ref == {"inventory_path": str(path), "servers": 7, "by_data_center": {"VA1": 6, "DE1": 1}}
    written = json.loads(path.read_text())
    assert written["account_alias"] == "DEMO" and written["collected_at"].endswith("Z")
    assert sorted(s["id"] for s in written["servers"]) == sorted(FLEET)


def test_inventory_reads_only_the_chosen_data_centers(fleet):
    ref = inventory(settings(data_centers=["DE1"]))
    assert ref["servers"] == 1 and ref["by_data_center"] == {"DE1": 1}
    assert not fleet.sent(containing="/datacenters/DEMO/va1")


def test_classify_plans_every_server_with_a_package_or_a_reason(fleet):
    ref, plan = plan_of(settings())
    rows = {r["id"]: r for r in plan["servers"]}
    assert [r["id"] for r in plan["servers"]] == sorted(FLEET)  # one row per server, by id
    assert {sid: (r["package_key"], r["state"]) for sid, r in rows.items()} == {
        "va1demoweb01": ("linux_yum", None),
        "va1demoweb02": ("linux_yum", None),
        "de1demoapp01": ("linux_yum", None),
        "va1demowin01": ("windows_2012", None),
        "va1demoold01": (None, "skipped_unsupported_os"),
        "va1demooff01": (None, "skipped_not_running"),
        "va1demotpl01": (None, "skipped_template"),
    }
    assert rows["va1demoweb02"]["in_maintenance"] is True and rows["va1demoweb01"]["in_maintenance"] is False
    assert rows["de1demoapp01"]["data_center"] == "DE1" and rows["va1demoweb01"]["group_name"] == "Web"
    assert rows["va1demowin01"]["package_id"] and rows["va1demoold01"]["package_id"] is None
    assert plan["account_alias"] == "DEMO" and plan["settings"]["account_alias"] == "DEMO"
    assert ref["servers"] == 7 and ref["to_patch"] == {"linux_yum": 3, "windows_2012": 1}
    assert ref["by_state"] == {
        "to_patch": 4,
        "skipped_unsupported_os": 1,
        "skipped_not_running": 1,
        "skipped_template": 1,
    }


def test_classify_applies_the_scope_and_the_dry_run(fleet):
    _, plan = plan_of(settings(server_deny_list=["va1demoweb02"], dry_run=True))
    states = {r["id"]: r["state"] for r in plan["servers"]}
    assert states["va1demoweb02"] == "skipped_filtered"
    assert states["va1demoweb01"] == states["de1demoapp01"] == "planned_dry_run"
    assert states["va1demoold01"] == "skipped_unsupported_os"  # the real reason beats "dry run"


def test_plan_row_falls_back_to_the_v2_field_names():
    from include.patching.classification import Scope

    server = {
        "id": "VA1DEMOWEB09",
        "locationId": "va1",
        "groupId": "g1",
        "os": "centOS6_64Bit",
        "osType": "CentOS 6 64-bit",
        "status": "active",
        "details": {"powerState": "started"},
    }
    row = tasks.plan_row(server, Scope.build(), dry_run=False)
    assert (row["id"], row["name"], row["data_center"], row["group_id"]) == (
        "va1demoweb09",
        "VA1DEMOWEB09",
        "VA1",
        "g1",
    )
    assert (row["package_key"], row["state"], row["in_maintenance"], row["is_template"]) == (
        "linux_yum",
        None,
        False,
        False,
    )


def dag_run() -> dict[str, Any]:
    run = SimpleNamespace(
        dag_id=DAG,
        run_id=RUN,
        run_type="manual",
        triggering_user_name="alice",
        start_date=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
    )
    return {"dag_run": run}


def test_audit_seals_one_row_per_server_and_publishes_the_asset_extra(fleet, tmp_path):
    ref, _ = plan_of(settings(dry_run=True))
    events = {"asset": SimpleNamespace(extra=None)}
    extra = tasks.audit(ref, context=dag_run(), outlet_events=events, asset="asset")
    assert events["asset"].extra == extra and extra["run_id"] == RUN
    pack = Path(extra["pack"])
    assert pack.is_relative_to(tmp_path / "reports")
    document = json.loads((pack / "audit.json").read_text())
    assert sorted(row["server_id"] for row in document["servers"]) == sorted(FLEET)  # I3
    by_id = {row["server_id"]: row["state"] for row in document["servers"]}
    assert by_id["va1demoweb01"] == "planned_dry_run" and by_id["va1demotpl01"] == "skipped_template"
    assert json.dumps(extra)  # JSON-able: it goes into the asset event


def test_audit_without_a_plan_fails_without_retries():
    with pytest.raises(AirflowFailException, match="No plan to audit"):
        tasks.audit(None, context=dag_run(), outlet_events=None, asset=None)


def test_notify_without_recipients_sends_nothing(monkeypatch):
    from patchflow.notifiers import PatchRunNotifier

    monkeypatch.setattr(PatchRunNotifier, "notify", lambda self, context: pytest.fail("no mail expected"))
    assert tasks.notify({"pack": "/nowhere"}, context={}, recipients="  ") == "no recipients configured"


def test_notify_hands_the_sealed_audit_and_report_to_the_notifier(fleet, monkeypatch):
    from patchflow.notifiers import PatchRunNotifier

    ref, _ = plan_of(settings(dry_run=True))
    extra = tasks.audit(ref, context=dag_run(), outlet_events=None, asset=None)
    sent: list[PatchRunNotifier] = []
    monkeypatch.setattr(PatchRunNotifier, "notify", lambda self, context: sent.append(self))
    assert tasks.notify(extra, context=dag_run(), recipients="ops@example.com") == "sent to ops@example.com"
    (notifier,) = sent
    assert notifier.to == "ops@example.com"
    assert notifier.report_location == str(Path(extra["pack"]) / "report.html")
    assert notifier.audit == json.loads((Path(extra["pack"]) / "audit.json").read_text())
