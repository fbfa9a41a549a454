"""Telling our execution apart by the patching service's own clock: no history read per server.

A rollout that has recently seen the service's ``Date`` records it (less a margin) as the time
its new execution cannot have started before (``not_before``); only without one does it read a
server's history right before the POST (``known_executions``). Our clock is never compared with
the API's, so the API running hours or years away from us changes nothing (I1, I8).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.clc.client import ApiClock
from include.patching.rollout import API_CLOCK_MARGIN, Rollout
from include.patching.rollout_state import Phase
from include.patching.watch import WatchState
from include.timefmt import parse_iso8601
from tests.patching.memory_api import (
    EXECUTE_PACKAGE,
    PATCH_SUMMARY,
    Answer,
    MemoryApi,
    make_rollout,
    ours,
    report,
)

SERVERS = ["va1demoweb01", "va1demoweb02", "va1demodb01"]


def make(tmp_path, api: MemoryApi) -> Rollout:
    return make_rollout(tmp_path, api, max_errors=10, server_timeout=3600)


def summaries_read(api: MemoryApi) -> list[str]:
    return [ids[0] for ids in api.calls_of(PATCH_SUMMARY)]


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(hours=-3), timedelta(days=3650)])
def test_one_read_dates_the_wave_and_each_server_gets_its_own_execution(tmp_path, offset):
    api = MemoryApi(SERVERS, dated=True, api_offset=offset)
    for sid in SERVERS:  # last month's run, and one from a minute before ours
        api.add_execution(sid, start=api.api_now() - timedelta(days=30))
        api.add_execution(sid, start=api.api_now() - timedelta(minutes=1))
    rollout = make(tmp_path, api)
    rollout.fill()
    assert summaries_read(api) == [SERVERS[0]]  # the first server's history dates the clock
    first, *rest = (rollout.entries[sid] for sid in SERVERS)
    assert first.known_executions is not None and first.not_before is None
    for entry in rest:
        assert entry.known_executions is None
        assert parse_iso8601(entry.not_before) == api.clock.api.replace(microsecond=0) - API_CLOCK_MARGIN
    api.start_queued()
    rollout.reconcile()
    assert all(rollout.entries[sid].execution_id == ours(api, sid)["execution_id"] for sid in SERVERS)


def test_a_recent_clock_means_no_read_before_the_post_and_a_stale_one_is_read_again(tmp_path):
    api = MemoryApi(SERVERS, dated=True)
    api.clock = ApiClock(api.api_now(), datetime.now(UTC))  # a read of a server in flight, just now
    rollout = make(tmp_path, api)
    rollout.fill()
    assert summaries_read(api) == [] and len(api.calls_of(EXECUTE_PACKAGE)) == 1

    api = MemoryApi(SERVERS, dated=True)
    age = rollout.config.api_clock_age
    api.clock = ApiClock(api.api_now(), datetime.now(UTC) - timedelta(seconds=age + 1))
    make(tmp_path / "stale", api).fill()
    assert summaries_read(api) == [SERVERS[0]]


def test_without_a_dated_answer_every_history_is_read(tmp_path):
    api = MemoryApi(SERVERS)  # an API that sends no Date header
    rollout = make(tmp_path, api)
    rollout.fill()
    assert summaries_read(api) == SERVERS
    assert all(rollout.entries[sid].known_executions == [] for sid in SERVERS)


def test_a_lost_answer_adopts_only_an_execution_dated_after_the_clock(tmp_path):
    """Exactly once under a lost answer: watched, never resent; an older execution never adopted."""
    api = MemoryApi(SERVERS, dated=True)
    api.clock = ApiClock(api.api_now(), datetime.now(UTC))
    before = {sid: api.add_execution(sid, start=api.api_now() - API_CLOCK_MARGIN * 2) for sid in SERVERS}
    api.answer = Answer.UNSENT_BUT_AMBIGUOUS  # nothing reached the platform; we cannot know
    rollout = make(tmp_path, api)
    rollout.fill()
    rollout.reconcile()
    assert all(rollout.entries[sid].phase is Phase.SUBMITTING for sid in SERVERS)
    assert not any(rollout.entries[sid].execution_id in before.values() for sid in SERVERS)
    rollout.apply({sid: report(WatchState.NO_EXECUTION, "lost") for sid in SERVERS})
    rollout.fill()
    assert len(api.calls_of(EXECUTE_PACKAGE)) == 1
    assert all(rollout.entries[sid].state == "failed" for sid in SERVERS)


def test_an_execution_in_the_way_is_named_after_the_api_refuses_and_costs_no_budget(tmp_path):
    api = MemoryApi(SERVERS, dated=True)
    api.clock = ApiClock(api.api_now(), datetime.now(UTC))
    theirs = api.add_execution("va1demoweb02", status="pending")  # someone else's run
    rollout = make_rollout(tmp_path, api, max_errors=0, server_timeout=3600)
    rollout.fill()
    entry = rollout.entries["va1demoweb02"]
    assert entry.state == "not_attempted"
    assert f"execution {theirs} was already pending" in entry.reason and "the API refused" in entry.reason
    assert summaries_read(api) == ["va1demoweb02"]  # read only after the refusal, to say why
    assert rollout.errors() == 0 and api.executes("va1demodb01") == 1
