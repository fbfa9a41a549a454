"""``Rollout`` as a state machine, driven directly against the in-memory client (no Airflow, no HTTP).

Phases move queued → submitting → submitted → done and each step is on disk before the next
side effect; the error budget stops new starts; servers never started end ``not_attempted``;
a restarted task rebuilds the rollout from the saved ledger and reconciles without a second
Execute Package (I1). The trigger's reports are built by hand (``report``).
"""

from __future__ import annotations

import json

from include.clc.shapes import BatchItem
from include.patching.packages import LINUX_YUM
from include.patching.rollout import Rollout, SubmissionResult
from include.patching.rollout_state import Ledger, MaintenanceOwnership, Phase, ledger_path, results_path
from include.patching.states import ServerState
from include.patching.watch import WatchState
from tests.patching.memory_api import (
    CANNOT_QUEUE,
    EXECUTE_PACKAGE,
    START,
    STOP,
    Answer,
    MemoryApi,
    make_rollout,
    ours,
    report,
)

SERVERS = ["va1demoweb01", "va1demoweb02", "va1demodb01"]


def phases_on_disk(tmp_path) -> dict[str, str]:
    saved = json.loads(ledger_path(tmp_path, LINUX_YUM.key).read_text())["servers"]
    return {sid: entry["phase"] for sid, entry in saved.items()}


def complete(api: MemoryApi, rollout: Rollout, ids: list[str]) -> None:
    """The queue starts the executions, they complete, the trigger reports them."""
    api.start_queued()
    api.complete_all()
    rollout.apply({sid: report(WatchState.COMPLETED, execution=ours(api, sid)) for sid in ids})


def test_phases_go_queued_submitting_submitted_done_each_on_disk_before_the_next_step(tmp_path):
    api = MemoryApi(SERVERS)
    rollout = make_rollout(tmp_path, api, max_concurrency=2)
    assert set(phases_on_disk(tmp_path).values()) == {Phase.QUEUED}
    seen_during_post: dict[str, str] = {}
    execute = api.execute_package

    def watching_the_ledger(alias: str, ids: list[str], package_id: str, parameters: dict) -> list[BatchItem]:
        seen_during_post.update(phases_on_disk(tmp_path))
        return execute(alias, ids, package_id, parameters)

    api.execute_package = watching_the_ledger  # type: ignore[method-assign]
    assert rollout.fill() == ["va1demoweb01", "va1demoweb02"]
    # durable before the POST (I1): a worker dying during it leaves "submitting", never "queued"
    assert seen_during_post == {
        "va1demoweb01": Phase.SUBMITTING,
        "va1demoweb02": Phase.SUBMITTING,
        "va1demodb01": Phase.QUEUED,
    }
    after = phases_on_disk(tmp_path)
    assert after == {
        "va1demoweb01": Phase.SUBMITTED,
        "va1demoweb02": Phase.SUBMITTED,
        "va1demodb01": Phase.QUEUED,
    }
    entry = rollout.entries["va1demoweb01"]
    assert (
        entry.job_id
        and entry.request_time
        and entry.submissions
        == [
            {"request_time": entry.request_time, "job_id": entry.job_id, "result": SubmissionResult.SUBMITTED}
        ]
    )
    assert not rollout.finished
    complete(api, rollout, ["va1demoweb01"])
    assert phases_on_disk(tmp_path)["va1demoweb01"] == Phase.DONE
    assert rollout.entries["va1demoweb01"].state is ServerState.PATCHED
    assert rollout.fill() == ["va1demodb01"]  # the freed slot is refilled
    complete(api, rollout, ["va1demoweb02", "va1demodb01"])
    assert rollout.finished and set(phases_on_disk(tmp_path).values()) == {Phase.DONE}
    assert [api.executes(sid) for sid in SERVERS] == [1, 1, 1]


def test_the_error_budget_stops_new_starts_and_the_rest_end_not_attempted(tmp_path):
    api = MemoryApi(SERVERS)
    rollout = make_rollout(tmp_path, api, max_concurrency=1, max_errors=0)
    rollout.fill()
    assert api.calls_of(EXECUTE_PACKAGE) == [("va1demoweb01",)]
    rollout.apply({"va1demoweb01": report(WatchState.JOB_FAILED, "queue job va1-81001 ended failed")})
    assert rollout.errors() == 1 and rollout.budget_exhausted()
    assert rollout.fill() == [] and rollout.finished
    assert api.calls_of(EXECUTE_PACKAGE) == [("va1demoweb01",)]  # nothing new was started
    counts = rollout.finish(results_path(tmp_path, LINUX_YUM.key))
    assert counts == {"failed": 1, "not_attempted": 2, "total": 3}
    reason = "error budget exhausted: 1 errors > max_errors 0"
    assert {sid: (e.state, e.reason) for sid, e in rollout.entries.items() if sid != "va1demoweb01"} == {
        "va1demoweb02": (ServerState.NOT_ATTEMPTED, reason),
        "va1demodb01": (ServerState.NOT_ATTEMPTED, reason),
    }
    saved = json.loads(results_path(tmp_path, LINUX_YUM.key).read_text())
    assert saved["budget_exhausted"] is True and saved["errors"] == 1


def test_errors_within_the_budget_keep_the_rollout_going(tmp_path):
    api = MemoryApi(SERVERS)
    rollout = make_rollout(tmp_path, api, max_concurrency=1, max_errors=1)
    rollout.fill()
    rollout.apply({"va1demoweb01": report(WatchState.TIMED_OUT, "deadline")})
    assert not rollout.budget_exhausted()
    assert rollout.fill() == ["va1demoweb02"]
    assert rollout.entries["va1demoweb01"].state is ServerState.TIMED_OUT


def test_servers_never_started_end_not_attempted_with_the_stop_reason(tmp_path):
    """The run stopped (e.g. the deferral backstop) before the queue was empty: never sent, not errors."""
    api = MemoryApi(SERVERS)
    rollout = make_rollout(tmp_path, api, max_concurrency=1, max_errors=5)
    rollout.fill()
    rollout.time_out_in_flight("the rollout's deferral timed out")
    counts = rollout.finish(results_path(tmp_path, LINUX_YUM.key), stop_reason="run stopped by the operator")
    assert counts == {"timed_out": 1, "not_attempted": 2, "total": 3}
    for sid in ("va1demoweb02", "va1demodb01"):
        entry = rollout.entries[sid]
        assert entry.reason == "run stopped by the operator" and entry.ended_at is None
        assert api.executes(sid) == 0 and entry.submissions == []
    assert rollout.errors() == 1  # only the timed-out server counts


def test_maintenance_ownership_and_release_records_per_server(tmp_path):
    """Ours after queued or "already on"; refused stays run-owned; preexisting is never touched."""
    api = MemoryApi(
        {"va1on": False, "va1already": True, "va1refused": False, "va1pre": True},
        refuse_start={"va1refused": CANNOT_QUEUE},
    )
    rollout = make_rollout(tmp_path, api, preexisting=("va1pre",), max_errors=5)
    rollout.fill()
    entries = rollout.entries
    assert {sid: e.maintenance for sid, e in entries.items()} == {
        "va1on": MaintenanceOwnership.OURS,
        "va1already": MaintenanceOwnership.OURS,  # after asking: maybe our own lost request's retry
        "va1refused": MaintenanceOwnership.REFUSED,
        "va1pre": MaintenanceOwnership.PREEXISTING,
    }
    assert api.calls_of(START) == [("va1on", "va1already", "va1refused")]
    assert (
        entries["va1refused"].state is ServerState.NOT_ATTEMPTED
        and entries["va1refused"].run_owned_maintenance
    )
    complete(api, rollout, ["va1on", "va1already", "va1pre"])
    released = {sid for ids in api.calls_of(STOP) for sid in ids}
    assert "va1pre" not in released and {"va1on", "va1already"} <= released
    for sid in ("va1on", "va1already"):
        assert entries[sid].maintenance_released and entries[sid].maintenance_release == "released"
    assert not entries["va1pre"].maintenance_released
    api.land_all()
    assert (
        api.in_maintenance("va1pre")
        and not api.in_maintenance("va1on")
        and not api.in_maintenance("va1already")
    )


def restarted(tmp_path, api: MemoryApi) -> Rollout:
    """What a task retry does: a new Rollout on the ledger saved by the attempt that died."""
    old = make_rollout(tmp_path, api)  # opens the existing ledger file; the objects are new
    return Rollout(api, Ledger.load(ledger_path(tmp_path, LINUX_YUM.key)), old.config)


def test_a_restart_reconciles_from_the_saved_ledger_without_a_second_submit(tmp_path):
    api = MemoryApi(SERVERS)
    api.answer = Answer.LOST  # the worker never learnt the job id
    first = make_rollout(tmp_path, api)
    first.fill()
    assert set(phases_on_disk(tmp_path).values()) == {Phase.SUBMITTING}
    api.answer = Answer.OK  # would be accepted now: it must not be sent
    api.start_queued()
    again = restarted(tmp_path, api)
    again.reconcile()
    assert {sid: again.entries[sid].execution_id for sid in SERVERS} == {
        sid: ours(api, sid)["execution_id"] for sid in SERVERS
    }
    assert set(phases_on_disk(tmp_path).values()) == {Phase.SUBMITTED}  # adopted, and saved
    assert again.fill() == []
    assert len(api.calls_of(EXECUTE_PACKAGE)) == 1
    api.complete_all()
    again.apply({sid: report(WatchState.COMPLETED, execution=ours(api, sid)) for sid in SERVERS})
    assert again.finished and {e.state for e in again.entries.values()} == {ServerState.PATCHED}


def test_a_restart_before_the_execution_appeared_keeps_watching_and_never_resends(tmp_path):
    api = MemoryApi(SERVERS)
    api.answer = Answer.LOST
    make_rollout(tmp_path, api).fill()
    again = restarted(tmp_path, api)
    again.reconcile()  # nothing started yet
    assert {w["server_id"] for w in again.watch_list()} == set(SERVERS)
    assert all(again.entries[sid].execution_id is None for sid in SERVERS)
    again.fill()
    assert len(api.calls_of(EXECUTE_PACKAGE)) == 1 and api.executes("va1demoweb01") == 1
