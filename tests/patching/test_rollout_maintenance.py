"""Maintenance mode in the rollout (I2), against an in-memory fake of the CLC API.

Issue 8 items 1, 2 and 14: an "already in maintenance" answer after this run asked is the run's
to release; a maintenance-on job slower than ``maintenance_timeout`` is never forgotten (and
never raced by a stopMaintenance); a server whose maintenance could not be turned on was never
sent the package, ends ``not_attempted`` and does not spend the error budget.
"""

from __future__ import annotations

import json

import pytest

from include.patching.audit_rows import MaintenanceResult, maintenance_columns
from include.patching.packages import LINUX_YUM
from include.patching.rollout import Rollout
from include.patching.rollout_state import (
    LedgerEntry,
    MaintenanceOwnership,
    ReleaseOutcome,
    ledger_path,
    results_path,
)
from include.patching.states import ServerState
from tests.patching.memory_api import ALREADY, CANNOT_QUEUE, TIMEOUT, MemoryApi, make_rollout


def on_disk(tmp_path) -> dict:
    return json.loads(ledger_path(tmp_path, LINUX_YUM.key).read_text())["servers"]


def fail_all_in_flight(rollout: Rollout) -> None:
    """The trigger reports every in-flight server failed (the rollout then releases them)."""
    rollout.apply({sid: {"state": "failed", "reason": "boom"} for sid in rollout.in_flight_ids()})


# --- item 1: the hook's retry after a lost startMaintenance answer -----------------------------


@pytest.mark.parametrize("already_answer", [None, ALREADY], ids=["no_message", "desired_state_message"])
def test_already_in_maintenance_after_asking_is_run_owned_and_released(tmp_path, already_answer):
    api = MemoryApi({"va1a": False, "va1b": False}, lose_start_answer=True, already_answer=already_answer)
    rollout = make_rollout(tmp_path, api)
    rollout.fill()
    assert api.calls_of("startMaintenance") == [("va1a", "va1b"), ("va1a", "va1b")]  # retried
    assert sorted(api.executed) == ["va1a", "va1b"]
    fail_all_in_flight(rollout)
    api.land_all()
    assert not api.in_maintenance("va1a") and not api.in_maintenance("va1b")
    entries = on_disk(tmp_path)
    assert {entries[s]["maintenance"] for s in ("va1a", "va1b")} == {MaintenanceOwnership.OURS}
    assert entries["va1a"]["maintenance_release"] == ReleaseOutcome.RELEASED
    assert (
        maintenance_columns(LedgerEntry.from_json(entries["va1a"]))["maintenance"]
        == MaintenanceResult.RELEASED
    )


def test_only_the_inventory_makes_a_server_preexisting(tmp_path):
    api = MemoryApi({"va1a": True, "va1b": False})
    rollout = make_rollout(tmp_path, api, preexisting=("va1a",))
    rollout.fill()
    fail_all_in_flight(rollout)
    rollout.finish(results_path(tmp_path, LINUX_YUM.key))
    api.land_all()
    assert api.calls_of("startMaintenance") == [("va1b",)]
    assert api.calls_of("stopMaintenance") == [("va1b",)]
    assert api.in_maintenance("va1a") and not api.in_maintenance("va1b")
    assert on_disk(tmp_path)["va1a"]["maintenance"] == MaintenanceOwnership.PREEXISTING


# --- item 2: a maintenance-on job slower than maintenance_timeout ------------------------------


def test_a_slow_maintenance_job_is_kept_and_never_raced_by_a_release(tmp_path):
    api = MemoryApi({"va1a": False, "va1b": False}, slow_waits=1)
    rollout = make_rollout(tmp_path, api, max_concurrency=2)
    rollout.fill()
    assert api.executed == []  # not confirmed in maintenance: the package is not sent
    # switching off now would be answered "already off" and the job would land afterwards
    assert api.calls_of("stopMaintenance") == []
    (job_id,) = api.jobs
    entries = on_disk(tmp_path)
    for sid in ("va1a", "va1b"):
        e = entries[sid]
        assert e["state"] == ServerState.NOT_ATTEMPTED
        assert f"job {job_id} still executing after {TIMEOUT:g} s" in e["reason"]
        assert e["maintenance"] == MaintenanceOwnership.OURS and e["maintenance_job_id"] == job_id
        assert e["maintenance_released"] is False and e["maintenance_release"] is None
    assert rollout.errors() == 0
    # if the release task never ran, the audit says so instead of "released"
    assert (
        maintenance_columns(LedgerEntry.from_json(entries["va1a"]))["maintenance"]
        == MaintenanceResult.LEFT_ON
    )


def test_servers_put_into_maintenance_ahead_are_released_after_their_job_landed(tmp_path):
    """Budget exhausted while the next server's maintenance-on job (started ahead) still runs."""
    api = MemoryApi({"va1a": False, "va1b": False})
    rollout = make_rollout(tmp_path, api, max_concurrency=1, max_errors=0)
    rollout.fill()
    assert api.executed == ["va1a"] and api.calls_of("startMaintenance") == [("va1a",), ("va1b",)]
    fail_all_in_flight(rollout)
    assert rollout.budget_exhausted()
    rollout.finish(results_path(tmp_path, LINUX_YUM.key))
    api.land_all()  # time passes: every job lands, in whatever order
    assert not api.in_maintenance("va1b")
    entries = on_disk(tmp_path)
    assert entries["va1b"]["state"] == ServerState.NOT_ATTEMPTED
    assert entries["va1b"]["maintenance_job_status"] == "succeeded"


# --- item 14: maintenance failures are not errors: the package was never sent -----------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (
            {"refuse_start": {"va1a": CANNOT_QUEUE}},
            "maintenance mode refused: The operation cannot be queued",
        ),
        (
            {"failing_start_jobs": {"va1a"}},
            "maintenance mode could not be turned on: job va1-81000 ended failed",
        ),
        ({"slow_waits": 1, "slow_servers": {"va1a"}}, "maintenance mode not confirmed: job va1-81000 still"),
        ({"start_request_error": {"va1a"}}, "maintenance mode could not be turned on: POST"),
    ],
    ids=["refused", "job_failed", "job_timed_out", "request_failed"],
)
def test_maintenance_failure_ends_not_attempted_without_spending_the_budget(tmp_path, fault, reason):
    api = MemoryApi({"va1a": False, "va1b": False, "va1c": False}, **fault)
    rollout = make_rollout(tmp_path, api, max_concurrency=1, max_errors=0)
    rollout.fill()
    entries = on_disk(tmp_path)
    assert entries["va1a"]["state"] == ServerState.NOT_ATTEMPTED
    assert entries["va1a"]["reason"].startswith(reason)
    assert "va1a" not in api.executed
    assert rollout.errors() == 0 and not rollout.budget_exhausted()
    assert api.executed == ["va1b"]  # the rollout went on with the next server


def test_a_refused_release_is_recorded_with_the_apis_reason(tmp_path):
    api = MemoryApi({"va1a": False}, refuse_stop={"va1a": "server is rebooting"})
    rollout = make_rollout(tmp_path, api)
    rollout.fill()
    fail_all_in_flight(rollout)
    entry = on_disk(tmp_path)["va1a"]
    assert entry["maintenance_release"] == ReleaseOutcome.REFUSED
    assert entry["maintenance_note"] == "stopMaintenance refused: server is rebooting"
    assert maintenance_columns(LedgerEntry.from_json(entry)) == {
        "maintenance": MaintenanceResult.LEFT_ON,
        "maintenance_note": "stopMaintenance refused: server is rebooting",
    }
