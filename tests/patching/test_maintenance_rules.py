"""The maintenance rules (I2) shared by the rollout and the release task, tested framework-free."""

from __future__ import annotations

import pytest

from include.clc.shapes import BatchItem
from include.patching.maintenance import (
    MaintenanceRelease,
    may_switch_off_now,
    outstanding_jobs,
    ownership_after_start,
    record_release,
    stop_answer_outcome,
)
from include.patching.rollout_state import (
    Ledger,
    LedgerEntry,
    MaintenanceOwnership,
    ReleaseOutcome,
    ledger_path,
)
from tests.patching.memory_api import ALREADY, MemoryApi


@pytest.mark.parametrize(
    ("item", "owner"),
    [
        (BatchItem("a", True, "j1", None), MaintenanceOwnership.OURS),
        (BatchItem("a", False, None, ALREADY), MaintenanceOwnership.OURS),  # maybe our lost request
        (BatchItem("a", False, None, None), MaintenanceOwnership.OURS),
        (BatchItem("a", False, None, "cannot be queued"), MaintenanceOwnership.REFUSED),
    ],
)
def test_ownership_after_a_start_answer_is_never_preexisting(item, owner):
    assert ownership_after_start(item) is owner


@pytest.mark.parametrize(
    ("item", "outcome"),
    [
        (BatchItem("a", True, "j1", None), ReleaseOutcome.RELEASED),
        (BatchItem("a", False, None, ALREADY), ReleaseOutcome.ALREADY_OFF),
        (BatchItem("a", False, None, "server is rebooting"), ReleaseOutcome.REFUSED),
    ],
)
def test_stop_answer_outcome(item, outcome):
    assert stop_answer_outcome(item) is outcome


def owned(job_id: str | None = None, status: str | None = None) -> LedgerEntry:
    return LedgerEntry(
        maintenance=MaintenanceOwnership.OURS, maintenance_job_id=job_id, maintenance_job_status=status
    )


def test_a_server_is_switched_off_only_when_no_maintenance_on_job_can_land_later():
    assert may_switch_off_now(owned())
    assert may_switch_off_now(owned("j1", "succeeded"))
    assert not may_switch_off_now(owned("j1", "executing"))
    assert not may_switch_off_now(owned("j1", None))  # never seen: may still land
    assert not may_switch_off_now(LedgerEntry.new(preexisting_maintenance=True))
    released = owned()
    record_release(released, ReleaseOutcome.RELEASED)
    assert released.maintenance_released and not may_switch_off_now(released)


def test_outstanding_jobs_group_servers_by_job():
    servers = {"a": owned("j1"), "b": owned("j1", "queued"), "c": owned("j2", "failed"), "d": owned()}
    assert outstanding_jobs(servers, ["a", "b", "c", "d"]) == {"j1": ["a", "b"]}


def release_ledger(tmp_path, api: MemoryApi, entries: dict[str, LedgerEntry]) -> Ledger:
    ledger = Ledger.open(
        ledger_path(tmp_path, "linux_yum"),
        package_key="linux_yum",
        package_id="pkg",
        alias="DEMO",
        targets=[(sid, False) for sid in entries],
    )
    ledger.servers.update(entries)
    return ledger


def test_release_waits_for_the_job_checks_live_and_records_every_outcome(tmp_path):
    api = MemoryApi(
        {"on": False, "off": False, "pre": True, "stuck": False}, refuse_stop={"stuck": "rebooting"}
    )
    (start,) = {i.job_id for i in api.start_maintenance("DEMO", ["on", "stuck"])}  # not landed yet
    entries = {
        "on": owned(start),
        "off": owned(),
        "pre": LedgerEntry.new(preexisting_maintenance=True),
        "stuck": owned(start),
    }
    ledger = release_ledger(tmp_path, api, entries)
    report = MaintenanceRelease(api, ledger, job_timeout=1.0, job_poll_interval=0.01).run()
    assert report.released == ["on"] and report.already_off == ["off"]
    assert report.problems == {"stuck": "stopMaintenance refused: rebooting"}
    assert not api.in_maintenance("on") and api.in_maintenance("pre")
    assert entries["on"].maintenance_job_status == "succeeded"
    assert {sid: e.maintenance_release for sid, e in ledger.servers.items()} == {
        "on": ReleaseOutcome.RELEASED,
        "off": ReleaseOutcome.ALREADY_OFF,
        "pre": ReleaseOutcome.KEPT_PREEXISTING,
        "stuck": ReleaseOutcome.REFUSED,
    }
    assert ("stopMaintenance", ("pre",)) not in api.calls


def test_release_switches_many_servers_off_in_request_chunks(tmp_path):
    """CLC processes a request's servers one after another: hundreds in one stopMaintenance job
    outlast the wait (seen at 10,000 servers), so the release sends chunks at once."""
    ids = [f"va1s{i:02d}" for i in range(12)]
    api = MemoryApi(dict.fromkeys(ids, False))
    (start,) = {i.job_id for i in api.start_maintenance("DEMO", ids)}
    ledger = release_ledger(tmp_path, api, {sid: owned(start) for sid in ids})
    report = MaintenanceRelease(api, ledger, job_timeout=1.0, job_poll_interval=0.01, chunk_size=5).run()
    assert sorted(report.released) == ids and not report.problems
    sent = api.calls_of("stopMaintenance")
    assert sorted(len(piece) for piece in sent) == [2, 5, 5]
    assert sorted(sid for piece in sent for sid in piece) == ids
