"""The snapshot_cleanup sweep deletes only this run's own, unneeded snapshots (against the in-memory API)."""

from __future__ import annotations

from datetime import timedelta

from include.patching.rollout_state import Ledger
from include.patching.snapshot_cleanup import ledger_files, sweep
from include.patching.snapshot_state import SnapshotFate, SnapshotMode
from include.patching.snapshots import SnapshotPolicy
from include.patching.watch import Outcome, WatchState
from include.timefmt import utcnow
from tests.patching.memory_api import DELETE_SNAPSHOT, MemoryApi, make_rollout, ours, patch_attempt, report

A, B, OWNER = "va1demoapp01", "va1demoapp02", "va1demodb01"
LATER = timedelta(days=3)


def dead_run(tmp_path, api: MemoryApi, *, keep: bool) -> Ledger:
    """A run that took its snapshots and died before settling them (no apply, no finish)."""
    folder = tmp_path / "patch_fleet" / "manual__1"
    folder.mkdir(parents=True)
    pol = SnapshotPolicy(mode=SnapshotMode.BEST_EFFORT, keep=keep, snapshot_timeout=0.05, poll_interval=0.01)
    rollout = make_rollout(folder, api, snapshots=pol, max_errors=10)
    rollout.fill()
    api.start_queued()
    api.complete_all()
    for sid in (A, B):  # the servers end, but the task dies before the snapshots are settled
        if api.executes(sid):
            rollout._record(sid, Outcome.from_dict(report(WatchState.COMPLETED, execution=ours(api, sid))))
    rollout.ledger.save()
    return rollout.ledger


def run_sweep(tmp_path, api, *, at=LATER):
    return sweep(
        api, ledger_files(tmp_path), now=utcnow() + at, grace=86400, job_timeout=1, poll_interval=0.01
    )


def test_a_dead_runs_unneeded_snapshot_is_deleted_and_an_owners_never(tmp_path):
    api = MemoryApi([A, B, OWNER], owner_snapshots=[OWNER])
    api.patches[B] = [patch_attempt("bash", "failed", 1)]
    dead_run(tmp_path, api, keep=False)
    owner_before = dict(api.snapshots[OWNER])
    result = run_sweep(tmp_path, api)
    assert api.calls_of(DELETE_SNAPSHOT) == [(A,)]  # A patched; B failed: kept for a person
    assert api.snapshots[A] == {} and len(api.snapshots[B]) == 1
    assert api.snapshots[OWNER] == owner_before
    assert result.deleted == [f"{A} (manual__1)"]
    ledger = Ledger.load(ledger_files(tmp_path)[0])
    assert ledger.servers[A].snapshot_fate is SnapshotFate.DELETED
    assert not run_sweep(tmp_path, api).deleted  # recorded: never deleted twice


def test_kept_snapshots_and_recent_runs_are_left_alone(tmp_path):
    api = MemoryApi([A, B])
    dead_run(tmp_path, api, keep=True)
    assert not run_sweep(tmp_path, api).deleted
    api2 = MemoryApi([A, B])
    dead_run(tmp_path / "recent", api2, keep=False)
    result = sweep(
        api2, ledger_files(tmp_path / "recent"), now=utcnow(), grace=86400, job_timeout=1, poll_interval=0.01
    )
    assert result.ledgers == 0 and not api2.calls_of(DELETE_SNAPSHOT)


def test_a_snapshot_replaced_by_someone_else_is_not_deleted(tmp_path):
    api = MemoryApi([A])
    dead_run(tmp_path, api, keep=False)
    api.snapshots[A] = {"2026-12-02.09:00:00": "3"}  # ours expired; a person took a new one
    result = run_sweep(tmp_path, api)
    assert not api.calls_of(DELETE_SNAPSHOT) and api.snapshots[A] == {"2026-12-02.09:00:00": "3"}
    assert result.deleted == [f"{A} (manual__1)"]  # ours is gone: recorded as such


def test_an_unconfirmed_request_is_only_reported(tmp_path):
    from include.patching.snapshot_state import SnapshotStatus

    api = MemoryApi([A])
    ledger = dead_run(tmp_path, api, keep=False)
    entry = ledger.servers[A]
    entry.snapshot, entry.snapshot_name, entry.snapshot_id = SnapshotStatus.UNCONFIRMED, None, None
    ledger.save()
    result = run_sweep(tmp_path, api)
    assert result.unconfirmed == [f"{A} (manual__1)"] and not api.calls_of(DELETE_SNAPSHOT)
