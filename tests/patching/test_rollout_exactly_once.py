"""``Rollout`` against an in-memory API: exactly once by construction, identity without clocks.

The trigger's reports are built by hand here (what it would observe); the trigger itself is
tested in tests/plugins/triggers, the whole loop in tests/plugins/operators.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from include.clc.errors import ClcApiError
from include.patching.packages import LINUX_YUM
from include.patching.rollout import Rollout, SubmissionResult
from include.patching.rollout_state import Phase, ledger_path
from include.patching.watch import WatchState
from include.timefmt import utc_text
from tests.patching.memory_api import EXECUTE_PACKAGE, STOP, Answer, MemoryApi, make_rollout, ours, report

SERVERS = ["va1demoweb01", "va1demoweb02", "va1demodb01"]


def make(tmp_path, api: MemoryApi, *, servers: list[str] | None = None) -> Rollout:
    return make_rollout(tmp_path, api, servers=servers, max_errors=10, server_timeout=3600)


def posts(api: MemoryApi) -> int:
    return len(api.calls_of(EXECUTE_PACKAGE))


def lost_reason() -> str:
    return (
        "the answer to the Execute Package request was lost and no new execution appeared on the "
        "server by the deadline; the request was not sent again (exactly once)"
    )


def test_a_lost_answer_is_never_sent_again_and_a_late_execution_is_adopted(tmp_path):
    """I1: the platform may start a batch's executions long after the request; nothing is re-sent."""
    api = MemoryApi(SERVERS)
    api.answer = Answer.LOST
    rollout = make(tmp_path, api)
    rollout.fill()
    watch = {w["server_id"]: w for w in rollout.watch_list()}
    assert set(watch) == set(SERVERS)
    assert all(w["job_id"] is None and w["known_executions"] == [] for w in watch.values())
    for _ in range(3):  # resumes and restarts before anything shows up
        rollout.fill()
        rollout.reconcile()
    assert posts(api) == 1
    api.start_queued()  # the queue finally starts them
    rollout.reconcile()
    assert {sid: rollout.entries[sid].execution_id for sid in SERVERS} == {
        sid: ours(api, sid)["execution_id"] for sid in SERVERS
    }
    api.complete_all()
    rollout.apply({sid: report(WatchState.COMPLETED, execution=ours(api, sid)) for sid in SERVERS})
    assert {e.state for e in rollout.entries.values()} == {"patched"}
    assert all(api.executions_run(sid) == 1 and api.executes(sid) == 1 for sid in SERVERS)
    assert all(len(e.submissions) == 1 for e in rollout.entries.values())


def test_no_execution_by_the_deadline_fails_and_maintenance_is_released_only_then(tmp_path):
    api = MemoryApi(SERVERS)
    api.answer = Answer.UNSENT_BUT_AMBIGUOUS  # nothing will ever start, but the client cannot know
    rollout = make(tmp_path, api)
    rollout.fill()
    assert all(api.in_maintenance(sid) for sid in SERVERS)  # in flight: an execution may still start
    assert api.calls_of(STOP) == []
    rollout.apply({sid: report(WatchState.NO_EXECUTION, lost_reason()) for sid in SERVERS})
    for sid in SERVERS:
        entry = rollout.entries[sid]
        assert entry.state == "failed" and entry.execution_id is None
        assert "was not sent again" in entry.reason
        assert api.executes(sid) == 1
    ops = [op for op, _ in api.calls]
    assert ops.index(STOP) > ops.index(EXECUTE_PACKAGE)
    api.land_all()
    assert not api.any_in_maintenance()  # I2


def test_servers_missing_from_the_answer_are_watched_not_resent(tmp_path):
    api = MemoryApi(SERVERS)
    api.answer = Answer.MISSING
    rollout = make(tmp_path, api)
    rollout.fill()
    rollout.fill()
    assert posts(api) == 1
    for sid in SERVERS:
        entry = rollout.entries[sid]
        assert entry.phase == Phase.SUBMITTING and entry.job_id is None
        assert entry.submissions[-1]["result"] == SubmissionResult.POSSIBLY_SUBMITTED


def test_a_request_that_provably_never_left_fails_at_once_and_is_not_resent(tmp_path):
    api = MemoryApi(SERVERS)
    api.answer = Answer.NEVER_LEFT
    rollout = make(tmp_path, api)
    rollout.fill()
    assert rollout.finished and posts(api) == 1
    assert {e.state for e in rollout.entries.values()} == {"failed"}
    api.land_all()
    assert not api.any_in_maintenance()


def test_an_execution_that_existed_before_the_request_is_never_adopted(tmp_path):
    """I4 (item 5): the API clock is 2 h ahead, so an old execution looks newer than our request."""
    api = MemoryApi(["va1demoweb01"], api_offset=timedelta(hours=2))
    old = api.add_execution("va1demoweb01", status="completed")
    api.answer = Answer.UNSENT_BUT_AMBIGUOUS
    rollout = make(tmp_path, api, servers=["va1demoweb01"])
    rollout.fill()
    rollout.reconcile()
    (watch,) = rollout.watch_list()
    assert watch["known_executions"] == [old] and rollout.entries["va1demoweb01"].execution_id is None
    rollout.apply({"va1demoweb01": report(WatchState.NO_EXECUTION, lost_reason())})
    entry = rollout.entries["va1demoweb01"]
    assert entry.state == "failed" and entry.execution_id is None  # never another run's execution


@pytest.mark.parametrize("offset", [timedelta(minutes=-10), timedelta(minutes=10), timedelta(days=-3650)])
def test_reconcile_adopts_our_execution_whatever_the_api_clock(tmp_path, offset):
    """I8 (item 6): no time floor; the API clock 10 minutes behind used to hide every execution."""
    api = MemoryApi(SERVERS, api_offset=offset)
    for sid in SERVERS:
        api.add_execution(sid, start=api.api_now() - timedelta(days=40))
    api.answer = Answer.LOST
    rollout = make(tmp_path, api)
    rollout.fill()
    api.start_queued()
    rollout.reconcile()
    assert all(rollout.entries[sid].execution_id == ours(api, sid)["execution_id"] for sid in SERVERS)


def test_the_snapshot_of_known_executions_is_taken_right_before_the_post(tmp_path):
    api = MemoryApi(["va1demoweb01"])
    rollout = make(tmp_path, api, servers=["va1demoweb01"])
    rollout.entries["va1demoweb01"].known_executions = []  # read earlier, e.g. a wave ahead
    meanwhile = api.add_execution("va1demoweb01", status="completed")  # someone else's run, since then
    api.answer = Answer.LOST
    rollout.fill()
    assert rollout.entries["va1demoweb01"].known_executions == [meanwhile]


def test_a_legacy_entry_without_a_snapshot_falls_back_to_the_request_time(tmp_path):
    api = MemoryApi(["va1demoweb01"])
    api.add_execution("va1demoweb01", start=datetime.now(UTC) - timedelta(days=1))
    rollout = make(tmp_path, api, servers=["va1demoweb01"])
    entry = rollout.entries["va1demoweb01"]
    entry.phase, entry.request_time = Phase.SUBMITTING, utc_text(datetime.now(UTC) - timedelta(seconds=5))
    assert entry.known_executions is None
    (watch,) = rollout.watch_list()
    assert watch["known_executions"] is None  # the trigger applies the request-time rule
    new = api.add_execution("va1demoweb01", status="pending")
    rollout.reconcile()
    assert entry.execution_id == new


def test_the_ledger_on_disk_keeps_the_snapshot_and_a_single_submission(tmp_path):
    api = MemoryApi(["va1demoweb01"])
    old = api.add_execution("va1demoweb01")
    api.answer = Answer.LOST
    rollout = make(tmp_path, api, servers=["va1demoweb01"])
    rollout.fill()
    saved = json.loads(ledger_path(tmp_path, LINUX_YUM.key).read_text())["servers"]["va1demoweb01"]
    assert saved["known_executions"] == [old] and saved["phase"] == Phase.SUBMITTING
    assert [s["result"] for s in saved["submissions"]] == ["possibly_submitted"]


def test_an_outcome_of_an_older_trigger_version_never_leads_to_a_resend(tmp_path):
    """A 'not_found' event written before an upgrade is ignored: the server stays watched."""
    api = MemoryApi(SERVERS)
    api.answer = Answer.LOST
    rollout = make(tmp_path, api)
    rollout.fill()
    rollout.apply({sid: {"state": "not_found", "reason": "legacy"} for sid in SERVERS})
    rollout.fill()
    assert len(rollout.watch_list()) == 3 and posts(api) == 1


def test_servers_left_alone_before_the_post_do_not_spend_the_error_budget(tmp_path):
    """Nothing was sent to them: someone else's pending execution, or an unreadable history."""
    api = MemoryApi(SERVERS)
    api.add_execution("va1demoweb01", status="pending")

    def unreadable(alias: str, server_id: str) -> list[dict]:
        if server_id == "va1demoweb02":
            raise ClcApiError("GET", "summary", 500, "boom")
        return MemoryApi.get_patch_summary(api, alias, server_id)

    api.get_patch_summary = unreadable  # type: ignore[method-assign]
    rollout = make(tmp_path, api)
    rollout.fill()
    for sid in ("va1demoweb01", "va1demoweb02"):
        assert rollout.entries[sid].state == "not_attempted", sid
        assert api.executes(sid) == 0
    assert rollout.errors() == 0 and not rollout.budget_exhausted()
    assert api.executes("va1demodb01") == 1  # the budget (0) still lets the healthy server go
