"""Fewer requests per server at the same safety: maintenance switched on ahead a request chunk at a
time, and finished servers' maintenance switched off together (I2 kept: every one is released)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from include.patching.packages import LINUX_YUM
from include.patching.read_schedule import GRAIN
from include.patching.rollout import Rollout
from include.patching.rollout_state import ReleaseOutcome, results_path
from include.patching.states import ServerState
from tests.patching.memory_api import START, STOP, MemoryApi, make_rollout


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


def chunked(
    tmp_path,
    api: MemoryApi,
    *,
    delay: float,
    concurrency: int,
    clock: Clock,
    release: int | None = None,
    ahead: int | None = None,
    poll: float | None = None,
) -> Rollout:
    plain = make_rollout(tmp_path, api, max_concurrency=concurrency, max_errors=100)
    config = replace(
        plain.config, chunk_size=3, release_delay=delay, release_chunk=release, ahead_chunk=ahead
    )
    if poll is not None:
        config = replace(config, job_poll_interval=poll)
    return Rollout(api, plain.ledger, config, now=clock)


def fail(rollout: Rollout, *ids: str) -> None:
    rollout.apply({sid: {"state": "failed", "reason": "boom", "observed_at": ""} for sid in ids})


def servers(n: int) -> list[str]:
    return [f"va1s{i:02d}" for i in range(n)]


def test_finished_servers_share_one_stop_maintenance_and_all_are_released(tmp_path):
    api = MemoryApi(servers(8))
    clock = Clock()
    rollout = chunked(tmp_path, api, delay=3600.0, concurrency=4, clock=clock)
    rollout.fill()
    first = rollout.in_flight_ids()
    fail(rollout, first[0])
    fail(rollout, first[1])
    assert api.calls_of(STOP) == []  # two finished, the chunk is three: they wait
    fail(rollout, first[2])
    assert api.calls_of(STOP) == [tuple(first[:3])]  # one request for the three
    fail(rollout, first[3])
    assert len(api.calls_of(STOP)) == 1
    rollout.finish(results_path(tmp_path, LINUX_YUM.key))  # the rest go at the end
    api.land_all()
    assert all(not api.in_maintenance(s) for s in servers(8))
    released = {s: e.maintenance_release for s, e in rollout.entries.items()}
    assert set(released.values()) == {ReleaseOutcome.RELEASED}


def test_many_finished_servers_at_once_are_released_in_request_chunks_sent_together(tmp_path):
    # CLC switches a request's servers off one after another: the many finishing at a fleet's end
    # as one request would take an hour (seen at 10,000 servers)
    api = MemoryApi(servers(8))
    rollout = chunked(tmp_path, api, delay=3600.0, concurrency=8, clock=Clock())
    rollout.fill()
    ids = rollout.in_flight_ids()
    fail(rollout, *ids)  # nothing left to start: all go now
    assert sorted(len(piece) for piece in api.calls_of(STOP)) == [2, 3, 3]
    assert sorted(s for piece in api.calls_of(STOP) for s in piece) == sorted(ids)


def test_while_others_patch_finished_servers_wait_for_a_release_chunk_and_the_end_goes_fast(tmp_path):
    # nothing waits on a stopMaintenance job mid-run, so it may be long; the last ones go side by side
    api = MemoryApi(servers(11))
    rollout = chunked(tmp_path, api, delay=3600.0, concurrency=6, clock=Clock(), release=5)
    rollout.fill()
    first = rollout.in_flight_ids()
    fail(rollout, *first[:4])
    rollout.fill()
    assert api.calls_of(STOP) == []  # 4 of 5: they wait (3 is the request chunk)
    fail(rollout, first[4])
    assert api.calls_of(STOP) == [tuple(first[:5])]
    rollout.fill()  # the last one starts: nothing is left to start
    rest = rollout.in_flight_ids()
    assert len(rest) == 6
    fail(rollout, *rest)
    assert [len(piece) for piece in api.calls_of(STOP)[1:]] == [3, 3]
    released = {s for piece in api.calls_of(STOP) for s in piece}
    assert released == set(servers(11))


def test_a_finished_servers_release_waits_no_longer_than_the_release_delay(tmp_path):
    api = MemoryApi(servers(8))
    clock = Clock()
    rollout = chunked(tmp_path, api, delay=60.0, concurrency=4, clock=clock)
    rollout.fill()
    first = rollout.in_flight_ids()
    fail(rollout, first[0])
    assert api.calls_of(STOP) == []
    clock.at += timedelta(seconds=61)
    fail(rollout, first[1])  # the first has waited past the delay: both go now
    assert api.calls_of(STOP) == [tuple(first[:2])]


def test_without_servers_left_to_start_the_last_ones_share_request_chunks_and_the_last_goes_at_once(
    tmp_path,
):
    # the tail finishes one by one, further apart: a request chunk (3 here), not the release chunk
    api = MemoryApi(servers(5))
    rollout = chunked(tmp_path, api, delay=3600.0, concurrency=5, clock=Clock(), release=25)
    rollout.fill()
    ids = rollout.in_flight_ids()
    fail(rollout, ids[0])
    fail(rollout, ids[1])
    assert api.calls_of(STOP) == []  # two of three: they wait
    fail(rollout, ids[2])
    assert api.calls_of(STOP) == [tuple(ids[:3])]
    fail(rollout, ids[3])
    assert len(api.calls_of(STOP)) == 1  # one in flight still
    fail(rollout, ids[4])  # nothing in flight: the rest go at once
    assert api.calls_of(STOP)[1:] == [tuple(ids[3:])]


def test_in_the_tail_a_finished_server_waits_no_longer_than_the_release_delay(tmp_path):
    api = MemoryApi(servers(3))
    clock = Clock()
    rollout = chunked(tmp_path, api, delay=60.0, concurrency=3, clock=clock)
    rollout.fill()
    a, b, _ = rollout.in_flight_ids()
    fail(rollout, a)
    assert api.calls_of(STOP) == []
    clock.at += timedelta(seconds=61)
    fail(rollout, b)
    assert api.calls_of(STOP) == [(a, b)]


def test_servers_ahead_of_their_slot_are_put_into_maintenance_a_chunk_at_a_time(tmp_path):
    api = MemoryApi(servers(12))
    rollout = chunked(tmp_path, api, delay=0.0, concurrency=2, clock=Clock())
    rollout.fill()
    assert api.calls_of(START) == [tuple(servers(2)), tuple(servers(12)[2:5])]  # the wave, then a chunk ahead
    for _ in range(6):  # refills of one server each
        fail(rollout, rollout.in_flight_ids()[0])
        rollout.fill()
    ahead = api.calls_of(START)[1:]
    assert all(len(ids) == 3 for ids in ahead)  # never one request per refilled server
    assert len(ahead) <= 3
    started = [s for ids in api.calls_of(START) for s in ids]
    assert len(started) == len(set(started))  # nobody asked twice
    for sid in api.executed:  # never patched outside maintenance
        assert sid in started


def test_when_a_trigger_last_read_a_server_goes_to_the_next_trigger(tmp_path):
    api = MemoryApi(servers(3))
    rollout = chunked(tmp_path, api, delay=0.0, concurrency=3, clock=Clock())
    rollout.fill()
    a, b, c = rollout.in_flight_ids()
    rollout.note_polls({a: "2026-12-08T03:00:05Z", "va1unknown": "2026-12-08T03:00:06Z"})
    fail(rollout, c)  # apply saves the ledger
    reloaded = Rollout(api, type(rollout.ledger).load(rollout.ledger.path), rollout.config)
    watched = {w["server_id"]: w for w in reloaded.watch_list()}
    assert watched[a]["polled_at"] == "2026-12-08T03:00:05Z"
    assert "polled_at" not in watched[b] and c not in watched


def test_a_failed_request_ahead_costs_only_the_server_it_fails_for_its_patch(tmp_path):
    """The chunk asked ahead shares one request; when that request fails, its servers are asked
    again at their own slot, so only the one whose request keeps failing is not patched."""
    ids = servers(6)
    api = MemoryApi(ids, start_request_error={ids[3]})
    rollout = chunked(tmp_path, api, delay=0.0, concurrency=2, clock=Clock())
    rollout.fill()
    while rollout.in_flight_ids():
        fail(rollout, rollout.in_flight_ids()[0])
        rollout.fill()
    assert [sid for sid in ids if api.executes(sid) != 1] == [ids[3]]
    assert rollout.entries[ids[3]].state is ServerState.NOT_ATTEMPTED


def test_a_planned_read_goes_to_the_next_trigger_and_a_stale_plan_does_not(tmp_path):
    api = MemoryApi(servers(3))
    rollout = chunked(tmp_path, api, delay=0.0, concurrency=3, clock=Clock())
    rollout.fill()
    a, b, _ = rollout.in_flight_ids()
    rollout.note_polls({}, {a: "2026-12-08T03:00:09.250000+00:00", b: "2026-12-08T03:00:07+00:00"})
    rollout.note_polls({}, {a: "2026-12-08T03:00:09.250000+00:00"})  # b: this trigger planned nothing
    rollout.apply({})
    reloaded = Rollout(api, type(rollout.ledger).load(rollout.ledger.path), rollout.config)
    watched = {w["server_id"]: w for w in reloaded.watch_list()}
    assert watched[a]["next_read_at"] == "2026-12-08T03:00:09.250000+00:00"
    assert "next_read_at" not in watched[b]


def test_what_a_trigger_saw_of_a_pending_execution_goes_to_the_next_trigger(tmp_path):
    api = MemoryApi(servers(2))
    rollout = chunked(tmp_path, api, delay=0.0, concurrency=2, clock=Clock())
    rollout.fill()
    a, b = rollout.in_flight_ids()
    seen = {
        "execution_id": "VA1-100001",
        "start_time": "2016-03-14T02:00:05Z",
        "initiations": [[0.0, 300.0, 3], [305.0, None, None]],
        "last_scan": True,
    }
    rollout.note_polls({}, {}, {a: seen, b: seen})
    rollout.note_polls({}, {}, {a: seen})  # b: this trigger saw nothing of it
    rollout.apply({})
    reloaded = Rollout(api, type(rollout.ledger).load(rollout.ledger.path), rollout.config)
    watched = {w["server_id"]: w for w in reloaded.watch_list()}
    assert watched[a]["seen"] == seen and "seen" not in watched[b]


def timing(final: float, installs: tuple[float, ...], lag: float) -> dict:
    return {"final": final, "gaps": [5.0] * len(installs), "installs": list(installs), "start_lag": lag}


def test_the_cadence_is_learnt_from_completed_servers_and_sets_the_first_read(tmp_path):
    api = MemoryApi(servers(8))
    rollout = chunked(tmp_path, api, delay=0.0, concurrency=8, clock=Clock())
    rollout.fill()
    ids = rollout.in_flight_ids()
    assert rollout.cadence(0.1) is None  # nothing completed yet: the back-off reads
    done = {
        sid: {
            "state": "completed",
            "reason": "",
            "observed_at": "2026-12-08T03:01:00Z",
            "execution_id": f"VA1-{i}",
            "timing": timing(45.0, (100.0 * (i + 1),), 2.0),
        }
        for i, sid in enumerate(ids[:5])
    }
    rollout.apply(done)
    cadence = rollout.cadence(0.1)
    assert cadence is not None and cadence.final == 45.0 and cadence.start_lag == 2.0
    assert cadence.installs == (100.0, 200.0, 300.0, 400.0, 500.0) and cadence.rate == 0.1
    # no read before the earliest completion: the start lag plus one scan and a grain, our seconds
    watched = rollout.watch_list(cadence)
    assert [w["quiet_seconds"] for w in watched] == [pytest.approx(2.0 + (45.0 + GRAIN) * 0.1)] * len(watched)


def test_past_a_hundred_completions_the_cadence_is_learnt_again_once_they_grew_by_a_tenth(tmp_path):
    api = MemoryApi(servers(130))
    rollout = chunked(tmp_path, api, delay=0.0, concurrency=130, clock=Clock())
    rollout.fill()
    ids = rollout.in_flight_ids()

    def complete(first: int, last: int) -> None:
        rollout.apply(
            {
                sid: {
                    "state": "completed",
                    "reason": "",
                    "observed_at": "2026-12-08T03:01:00Z",
                    "execution_id": f"VA1-{i}",
                    "timing": timing(45.0, (float(i + 1),), 2.0),
                }
                for i, sid in enumerate(ids[first:last], start=first)
            }
        )

    complete(0, 50)
    assert rollout.cadence(0.1) is not rollout.cadence(0.1)  # few: learnt every time
    complete(50, 100)
    learnt = rollout.cadence(0.1)
    complete(100, 105)
    assert rollout.cadence(0.1) is learnt  # 5 % more: the same
    assert rollout.cadence(1.0) is not learnt  # another rate: learnt again
    complete(105, 112)
    again = rollout.cadence(0.1)
    assert again is not learnt and len(again.installs) == 112  # 12 % more since: learnt again


def test_more_servers_go_into_maintenance_ahead_in_one_request_than_a_wave_request_holds(tmp_path):
    api = MemoryApi(servers(14))
    rollout = chunked(tmp_path, api, delay=0.0, concurrency=2, clock=Clock(), ahead=5)
    rollout.fill()
    assert api.calls_of(START) == [tuple(servers(2)), tuple(servers(14)[2:7])]  # the wave, then 5 ahead
    for _ in range(8):
        fail(rollout, rollout.in_flight_ids()[0])
        rollout.fill()
    assert [len(ids) for ids in api.calls_of(START)[1:]] == [5, 5, 2]  # the last 2: all that was left
    for sid in api.executed:
        assert api.in_maintenance(sid) or rollout.entries[sid].maintenance_release is not None


def test_once_a_refill_waited_for_maintenance_asked_ahead_the_requests_ahead_shrink(tmp_path):
    # a job poll interval of 0: any confirmation of a job asked ahead counts as having waited
    api = MemoryApi(servers(14))
    rollout = chunked(tmp_path, api, delay=0.0, concurrency=2, clock=Clock(), ahead=5, poll=0.0)
    rollout.fill()
    for _ in range(8):
        fail(rollout, rollout.in_flight_ids()[0])
        rollout.fill()
    assert [len(ids) for ids in api.calls_of(START)[1:]][:2] == [5, 3]  # then the request chunk
