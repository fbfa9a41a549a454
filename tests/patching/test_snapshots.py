"""The snapshot safety net of a rollout (include/patching/snapshots.py) against the in-memory API."""

from __future__ import annotations

import json

import pytest

from include.patching import snapshots as snapshots_module
from include.patching.chaos import CRASH_AFTER_CREATE_SNAPSHOT
from include.patching.rollout import Rollout
from include.patching.rollout_state import Ledger, LedgerEntry
from include.patching.snapshot_state import RevertStatus, SnapshotFate, SnapshotMode, SnapshotStatus
from include.patching.snapshots import SnapshotPolicy, created_at, evidence, listed_snapshots
from include.patching.states import ServerState
from include.patching.watch import WatchState
from tests.patching.memory_api import (
    CREATE_SNAPSHOT,
    DELETE_SNAPSHOT,
    EXECUTE_PACKAGE,
    PATCH_SUMMARY,
    RESTORE_SNAPSHOT,
    START,
    STOP,
    MemoryApi,
    make_rollout,
    ours,
    patch_attempt,
    report,
)

A, B, C = "va1demoapp01", "va1demoapp02", "va1demoapp03"
FAST = {"snapshot_timeout": 0.05, "revert_timeout": 0.05, "poll_interval": 0.01}


def policy(mode: str = "best_effort", **kw) -> SnapshotPolicy:
    return SnapshotPolicy(mode=SnapshotMode(mode), **(FAST | kw))


def run(tmp_path, api: MemoryApi, pol: SnapshotPolicy, outcomes=None) -> tuple[Rollout, dict]:
    """fill → the platform runs the packages → apply → finish; rows of the results by server."""
    rollout = make_rollout(tmp_path, api, snapshots=pol, max_errors=10)
    rollout.fill()
    api.start_queued()
    api.complete_all()
    started = [s for s in api.servers if api.executes(s)]
    if outcomes is None:
        outcomes = {s: report(WatchState.COMPLETED, execution=ours(api, s)) for s in started}
    rollout.apply(outcomes)
    rollout.finish(tmp_path / "results.json")
    api.land_all()  # the stopMaintenance jobs land
    rows = {r["server_id"]: r for r in json.loads((tmp_path / "results.json").read_text())["servers"]}
    return rollout, rows


def order_of(api: MemoryApi, sid: str) -> list[str]:
    """The requests that changed something on the server, in order (reads left out)."""
    return [name for name, ids in api.calls if sid in ids and name != PATCH_SUMMARY]


def test_off_takes_no_snapshot_and_reads_nothing_more(tmp_path):
    api = MemoryApi([A])
    rollout, rows = run(tmp_path, api, SnapshotPolicy())
    assert rows[A]["state"] == "patched"
    assert not api.calls_of(CREATE_SNAPSHOT)
    assert rollout.entries[A].snapshot is None


def test_snapshot_taken_after_maintenance_and_before_the_package_then_kept(tmp_path):
    api = MemoryApi([A, B])
    rollout, rows = run(tmp_path, api, policy(keep=True))
    assert order_of(api, A) == [START, CREATE_SNAPSHOT, EXECUTE_PACKAGE, STOP]
    assert api.calls_of(CREATE_SNAPSHOT) == [(A, B)]  # one batch for the window
    for sid in (A, B):
        e = rollout.entries[sid]
        assert rows[sid]["state"] == "patched"
        assert e.snapshot is SnapshotStatus.CONFIRMED and e.snapshot_fate is SnapshotFate.KEPT
        assert list(api.snapshots[sid]) == [e.snapshot_name]
    assert not api.calls_of(DELETE_SNAPSHOT)


def test_without_keep_the_runs_snapshot_is_deleted_after_success(tmp_path):
    api = MemoryApi([A])
    rollout, rows = run(tmp_path, api, policy(keep=False))
    assert rows[A]["state"] == "patched"
    assert rollout.entries[A].snapshot_fate is SnapshotFate.DELETED
    assert api.snapshots[A] == {}
    assert order_of(api, A).index(DELETE_SNAPSHOT) < order_of(api, A).index(STOP)


@pytest.mark.parametrize("fleet", [{"owner_snapshots": [A]}, {"storage_gb": {A: 2048}}])
def test_required_never_patches_a_server_without_its_own_snapshot(tmp_path, fleet):
    api = MemoryApi([A, B], **fleet)
    owner = dict(api.snapshots[A])
    rollout, rows = run(tmp_path, api, policy("required", keep=False))
    assert rows[A]["state"] == ServerState.SKIPPED_NO_SNAPSHOT
    assert "snapshot required" in rows[A]["reason"]
    assert rows[A]["observed_at"] is None and rows[A]["ended_at"] is None  # never sent: nothing observed
    assert api.executes(A) == 0 and not api.in_maintenance(A)  # maintenance released (I2)
    assert api.calls_of(CREATE_SNAPSHOT) == [(B,)]  # never asked for A
    assert api.snapshots[A] == owner  # an owner's snapshot is untouched
    assert rows[B]["state"] == "patched"
    assert rollout.errors() == 0  # nothing was sent: not an error against the budget


def test_best_effort_patches_without_a_snapshot_and_says_why(tmp_path):
    api = MemoryApi([A], owner_snapshots=[A])
    rollout, rows = run(tmp_path, api, policy(keep=False, revert_on_failure=True))
    assert rows[A]["state"] == "patched"
    e = rollout.entries[A]
    assert e.snapshot is SnapshotStatus.NOT_TAKEN and "belongs to its owner" in (e.snapshot_note or "")
    assert list(api.snapshots[A]) == ["2026-11-20.08:00:00"]  # never deleted


def test_a_failed_patch_is_reverted_to_this_runs_snapshot_then_maintenance_released(tmp_path):
    api = MemoryApi([A])
    api.patches[A] = [patch_attempt("bash", "failed", 1)]
    rollout, rows = run(tmp_path, api, policy(revert_on_failure=True, keep=False))
    e = rollout.entries[A]
    assert rows[A]["state"] == "reverted" and "1 of 1 patches failed" in rows[A]["reason"]
    assert e.failed_state is ServerState.FAILED and e.revert is RevertStatus.RESTORED
    assert api.restored == [A]
    assert order_of(api, A).index(RESTORE_SNAPSHOT) < order_of(api, A).index(STOP)
    assert not api.in_maintenance(A)
    assert rollout.errors() == 1  # the patch failed: it counts against the budget
    assert e.snapshot_fate is SnapshotFate.DELETED  # not kept: deleted after the revert too


def test_a_timed_out_server_is_reverted(tmp_path):
    api = MemoryApi([A])
    outcomes = {A: report(WatchState.TIMED_OUT, "no completed execution by the deadline")}
    rollout, rows = run(tmp_path, api, policy(revert_on_failure=True), outcomes)
    assert rows[A]["state"] == "reverted" and rollout.entries[A].failed_state is ServerState.TIMED_OUT


def test_no_revert_without_revert_on_failure(tmp_path):
    api = MemoryApi([A])
    api.patches[A] = [patch_attempt("bash", "failed", 1)]
    _, rows = run(tmp_path, api, policy(revert_on_failure=False))
    assert rows[A]["state"] == "failed" and not api.calls_of(RESTORE_SNAPSHOT)


def test_an_owners_snapshot_is_never_restored(tmp_path):
    api = MemoryApi([A], owner_snapshots=[A])
    api.patches[A] = [patch_attempt("bash", "failed", 1)]
    _, rows = run(tmp_path, api, policy(revert_on_failure=True))
    assert rows[A]["state"] == "failed"
    assert not api.calls_of(RESTORE_SNAPSHOT)


@pytest.mark.parametrize("fault", ["failing_restores", "hanging_restores"])
def test_a_restore_that_fails_or_hangs_ends_revert_failed_and_maintenance_is_released(tmp_path, fault):
    api = MemoryApi([A], **{fault: [A]})
    api.patches[A] = [patch_attempt("bash", "failed", 1)]
    rollout, rows = run(tmp_path, api, policy(revert_on_failure=True, keep=False))
    assert rows[A]["state"] == "revert_failed" and "revert failed" in rows[A]["reason"]
    assert not api.in_maintenance(A)
    e = rollout.entries[A]
    assert e.snapshot_fate is SnapshotFate.KEPT  # the server's state is unknown: never deleted
    assert api.calls_of(RESTORE_SNAPSHOT) == [(A,)]


def test_a_failed_snapshot_job_required_refuses_best_effort_patches(tmp_path):
    api = MemoryApi([A], failing_snapshots=[A])
    _, rows = run(tmp_path, api, policy("required"))
    assert rows[A]["state"] == "skipped_no_snapshot" and "ended failed" in rows[A]["reason"]
    api2 = MemoryApi([A], failing_snapshots=[A])
    _, rows2 = run(tmp_path / "b", api2, policy("best_effort"))
    assert rows2[A]["state"] == "patched"


class Crash(BaseException):
    """Stands for the worker dying (os._exit) in a test process."""


def test_a_worker_killed_right_after_create_snapshot_takes_no_second_one(tmp_path, monkeypatch):
    api = MemoryApi([A, B])

    def die(name: str) -> None:
        if name == CRASH_AFTER_CREATE_SNAPSHOT:
            raise Crash

    monkeypatch.setattr(snapshots_module, "crash_point", die)
    first = make_rollout(tmp_path, api, snapshots=policy(), max_errors=10)
    with pytest.raises(Crash):
        first.fill()
    assert {e.snapshot for e in Ledger.load(first.ledger.path).servers.values()} == {SnapshotStatus.REQUESTED}
    monkeypatch.setattr(snapshots_module, "crash_point", lambda name: None)
    api.land_all()  # the snapshots the lost answer queued are taken meanwhile
    retry = Rollout(api, Ledger.load(first.ledger.path), first.config)
    retry.reconcile()
    retry.fill()
    assert api.calls_of(CREATE_SNAPSHOT) == [(A, B)]  # exactly one request
    assert all(len(api.snapshots[s]) == 1 for s in (A, B))
    assert all(retry.entries[s].snapshot is SnapshotStatus.CONFIRMED for s in (A, B))
    assert api.executes(A) == 1 and api.executes(B) == 1  # the patch goes on


def test_a_snapshot_that_never_appears_after_a_lost_answer_is_not_requested_again(tmp_path, monkeypatch):
    api = MemoryApi([A])
    monkeypatch.setattr(snapshots_module, "crash_point", lambda name: (_ for _ in ()).throw(Crash()))
    first = make_rollout(tmp_path, api, snapshots=policy("required"), max_errors=10)
    with pytest.raises(Crash):
        first.fill()
    monkeypatch.setattr(snapshots_module, "crash_point", lambda name: None)
    api.jobs.clear()  # the platform lost it: nothing ever lands
    api.snapshots[A].clear()
    retry = Rollout(api, Ledger.load(first.ledger.path), first.config)
    retry.fill()
    assert api.calls_of(CREATE_SNAPSHOT) == [(A,)]
    assert retry.entries[A].state is ServerState.SKIPPED_NO_SNAPSHOT
    assert (
        retry.entries[A].snapshot is SnapshotStatus.UNCONFIRMED
        and "left to expiry" in retry.entries[A].snapshot_note
    )


def test_older_ledger_entries_load_without_snapshot_fields():
    raw = LedgerEntry().to_json()
    for key in ("snapshot", "snapshot_name", "snapshot_fate", "revert", "failed_state", "snapshot_before"):
        raw.pop(key)
    entry = LedgerEntry.from_json(raw)
    assert entry.snapshot is None and entry.revert is None
    assert evidence(entry)["snapshot"] is None


def test_the_evidence_names_only_this_runs_snapshot():
    entry = LedgerEntry(snapshot=SnapshotStatus.CONFIRMED, snapshot_name="2026-12-01.10:00:01")
    entry.snapshot_fate, entry.revert = SnapshotFate.KEPT, RevertStatus.RESTORED
    assert evidence(entry) == {
        "snapshot": "confirmed",
        "snapshot_name": "2026-12-01.10:00:01",
        "snapshot_created_at": "2026-12-01T10:00:01Z",
        "snapshot_fate": "kept",
        "snapshot_restored": True,
        "snapshot_note": "",
    }
    assert created_at("not a name") is None


def test_snapshot_ids_come_from_the_links():
    server = {
        "details": {
            "snapshots": [
                {
                    "name": "2026-12-01.10:00:01",
                    "links": [{"rel": "restore", "href": "/v2/servers/d/x/snapshots/7/restore"}],
                }
            ]
        }
    }
    (snap,) = listed_snapshots(server)
    assert (snap.name, snap.snapshot_id) == ("2026-12-01.10:00:01", "7")


def test_restores_of_a_wave_are_all_sent_before_any_is_waited_for(tmp_path, monkeypatch):
    api = MemoryApi([A, B])
    for sid in (A, B):
        api.patches[sid] = [patch_attempt("bash", "failed", 1)]
    waits = []
    wait = api.wait_for_job
    monkeypatch.setattr(
        api, "wait_for_job", lambda alias, job, **kw: waits.append(len(api.calls)) or wait(alias, job, **kw)
    )
    _, rows = run(tmp_path, api, policy(revert_on_failure=True))
    assert rows[A]["state"] == rows[B]["state"] == "reverted"
    restores = [i for i, (name, _) in enumerate(api.calls) if name == RESTORE_SNAPSHOT]
    assert len(restores) == 2
    first_wait_after = min(n for n in waits if n > restores[0])
    assert first_wait_after > restores[1]  # both sent before the first restore job is polled


def test_a_refused_package_is_not_reverted(tmp_path):
    from tests.patching.memory_api import Answer

    api = MemoryApi([A])
    api.answer = Answer.NEVER_LEFT  # the package provably never reached the server
    _, rows = run(tmp_path, api, policy(revert_on_failure=True), outcomes={})
    assert rows[A]["state"] == "failed" and not api.calls_of(RESTORE_SNAPSHOT)


def test_a_restart_waits_for_the_dead_attempts_restore_and_never_sends_another(tmp_path):
    api = MemoryApi([A, B])
    for sid in (A, B):
        api.patches[sid] = [patch_attempt("bash", "failed", 1)]
    rollout = make_rollout(tmp_path, api, snapshots=policy(revert_on_failure=True), max_errors=10)
    rollout.fill()
    api.start_queued()
    api.complete_all()
    for sid in (A, B):  # the servers end failed; the task dies around the restores
        rollout._end(sid, ServerState.FAILED, "1 of 1 patches failed")
    a, b = rollout.entries[A], rollout.entries[B]
    a.revert, a.revert_job_id = RevertStatus.QUEUED, api.restore_snapshot("DEMO", A, a.snapshot_id)
    b.revert = RevertStatus.REQUESTED  # sent or not: its answer was never recorded
    rollout.ledger.save()
    retry = Rollout(api, Ledger.load(rollout.ledger.path), rollout.config)
    retry.reconcile()
    assert api.calls_of(RESTORE_SNAPSHOT) == [(A,)]
    assert retry.entries[A].state is ServerState.REVERTED
    assert (
        retry.entries[B].state is ServerState.REVERT_FAILED and "check the server" in retry.entries[B].reason
    )
