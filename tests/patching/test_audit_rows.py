"""``build_rows``: the one-row-per-server join of plan, rollout results and ledgers (I3).

Precedence, strongest first: the plan's own state (skipped, template, not running, dry run);
the rollout's results file; the rollout ledger when the results were never written (terminal
state as recorded, in flight → failed with the job named, never requested → not_attempted).
"""

from __future__ import annotations

from typing import Any

import pytest

from include.patching.audit_rows import EMPTY_RESULT, build_rows
from include.patching.maintenance import record_release
from include.patching.rollout_state import LedgerEntry, MaintenanceOwnership, Phase, ReleaseOutcome
from include.patching.states import ALL_STATES, ServerState


def target(sid: str, package: str = "linux_yum", **extra: Any) -> dict[str, Any]:
    return {"id": sid, "package_key": package, "state": None, **extra}


def skipped(sid: str, state: ServerState, reason: str) -> dict[str, Any]:
    return {"id": sid, "package_key": None, "state": state.value, "reason": reason}


PLAN = {
    "account_alias": "DEMO",
    "servers": [
        target("va1demoweb01", name="VA1DEMOWEB01", data_center="VA1", os="centOS6_64Bit", os_family="linux"),
        target("va1demoweb02"),
        target("va1demodb01"),
        target("va1demodb02"),
        target("va1demoapp01"),
        skipped("va1demoold01", ServerState.SKIPPED_UNSUPPORTED_OS, "no package for ubuntu"),
        skipped("va1demooff01", ServerState.SKIPPED_NOT_RUNNING, "power state stopped"),
        skipped("va1demotpl01", ServerState.SKIPPED_TEMPLATE, "a template"),
        {"id": "va1demodry01", "package_key": "linux_yum", "state": "planned_dry_run", "reason": "dry run"},
        target("va1demowin01", package="windows_2012"),
    ],
}


def result_row(sid: str, state: str, **extra: Any) -> dict[str, Any]:
    return {"server_id": sid, "state": state, "reason": "", **EMPTY_RESULT, **extra}


def ledger_entry(phase: Phase, state: ServerState | None = None, **fields: Any) -> dict[str, Any]:
    entry = LedgerEntry.new()
    entry.phase, entry.state = phase, state
    for name, value in fields.items():
        setattr(entry, name, value)
    return entry.to_json()


def record_release_json(entry_json: dict[str, Any]) -> None:
    entry = LedgerEntry.from_json(entry_json)
    record_release(entry, ReleaseOutcome.RELEASED)
    entry_json.update(entry.to_json())


@pytest.fixture
def rows() -> dict[str, dict[str, Any]]:
    results = {
        "linux_yum": {
            "servers": [
                result_row(
                    "VA1DEMOWEB01",  # ids are matched case-insensitively
                    "patched",
                    execution_id="VA1-100001",
                    queue_job_id="va1-81001",
                    patches_installed=1,
                    patches=None,
                ),
                result_row("va1demoold01", "patched"),  # a skipped server never takes a result
                result_row("va1notinplan", "patched"),  # not in the plan: no row
            ]
        },
        "windows_2012": None,  # that rollout never wrote its results
    }
    owned = ledger_entry(Phase.DONE, ServerState.PATCHED, maintenance=MaintenanceOwnership.OURS)
    record_release_json(owned)
    ledgers = {
        "linux_yum": {
            "servers": {
                "va1demoweb01": owned,
                # the results file is missing these: the ledger tells what happened
                "va1demoweb02": ledger_entry(
                    Phase.DONE,
                    ServerState.FAILED,
                    reason="1 of 2 patches failed",
                    execution_id="VA1-100002",
                    job_id="va1-81002",
                    patches_failed=1,
                ),
                "va1demodb01": ledger_entry(Phase.SUBMITTED, job_id="va1-81003", execution_id="VA1-100003"),
                "va1demodb02": ledger_entry(Phase.SUBMITTING),
                "va1demoapp01": ledger_entry(Phase.QUEUED),
                "va1demoold01": ledger_entry(Phase.DONE, ServerState.PATCHED),
            }
        },
        "windows_2012": None,
    }
    # the linux results name only web01: the rest must come from the ledger
    return {row["server_id"]: row for row in build_rows(PLAN, results, ledgers)}


def test_every_plan_server_exactly_once_in_plan_order():
    built = build_rows(PLAN, {"linux_yum": {"servers": [result_row("va1notinplan", "patched")]}}, {})
    assert [r["server_id"] for r in built] == [s["id"] for s in PLAN["servers"]]
    assert {r["state"] for r in built} <= {s.value for s in ALL_STATES}


def test_the_plans_own_state_wins_over_any_result(rows):
    assert (rows["va1demoold01"]["state"], rows["va1demoold01"]["reason"]) == (
        "skipped_unsupported_os",
        "no package for ubuntu",
    )
    assert rows["va1demoold01"]["execution_id"] is None and rows["va1demoold01"]["patches"] == []
    assert rows["va1demooff01"]["state"] == "skipped_not_running"
    assert rows["va1demotpl01"]["state"] == "skipped_template"
    assert (rows["va1demodry01"]["state"], rows["va1demodry01"]["reason"]) == ("planned_dry_run", "dry run")


def test_a_result_row_is_taken_as_written(rows):
    web = rows["va1demoweb01"]
    assert web["state"] == "patched" and web["execution_id"] == "VA1-100001"
    assert web["queue_job_id"] == "va1-81001" and web["patches_installed"] == 1
    assert web["patches"] == []  # None in the results: an empty list in the audit


def test_without_results_a_terminal_ledger_state_is_reported_as_recorded(rows):
    row = rows["va1demoweb02"]
    assert (row["state"], row["reason"]) == ("failed", "1 of 2 patches failed")
    assert (row["execution_id"], row["queue_job_id"], row["patches_failed"]) == ("VA1-100002", "va1-81002", 1)


@pytest.mark.parametrize(("sid", "job"), [("va1demodb01", "va1-81003"), ("va1demodb02", "unknown")])
def test_without_results_a_server_in_flight_is_failed_naming_its_job(rows, sid, job):
    row = rows[sid]
    assert row["state"] == "failed"
    assert (
        f"the package was requested (queue job {job}) but the patch_linux_yum rollout ended" in row["reason"]
    )


def test_without_results_a_server_never_requested_is_not_attempted(rows):
    for sid, key in (("va1demoapp01", "linux_yum"), ("va1demowin01", "windows_2012")):
        row = rows[sid]
        assert row["state"] == "not_attempted", sid
        assert (
            row["reason"]
            == f"the patch_{key} rollout did not run to completion; the package was never requested"
        )
        assert row["execution_id"] is None and row["patches"] == []


def test_base_columns_come_from_the_plan(rows):
    web = rows["va1demoweb01"]
    assert (web["server_name"], web["data_center"], web["os"], web["os_family"]) == (
        "VA1DEMOWEB01",
        "VA1",
        "centOS6_64Bit",
        "linux",
    )
    other = rows["va1demodb01"]
    assert (other["server_name"], other["os_family"], other["account_alias"]) == (
        "VA1DEMODB01",
        "other",
        "DEMO",
    )


def test_maintenance_columns_come_from_the_ledger_whatever_the_state_source(rows):
    assert (rows["va1demoweb01"]["maintenance"], rows["va1demoweb01"]["maintenance_note"]) == ("released", "")
    assert rows["va1demodb01"]["maintenance"] == "not_used"
    assert rows["va1demoold01"]["maintenance"] == "not_used"  # skipped: never a rollout target
