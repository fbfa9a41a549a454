"""The read schedule plans each read of a pending execution from what the summary showed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.patching.read_schedule import (
    GRAIN,
    Cadence,
    ExecutionShape,
    Initiation,
    api_age,
    final_scan_confirmed,
    in_last_scan,
    initiations,
    next_read,
)

START = datetime(2026, 3, 10, 2, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)  # our clock: nowhere near the API's (I8)


def at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def execution(*inits: tuple[float, float | None, str]) -> dict:
    return {
        "execution_id": "VA1-100001",
        "status": "pending",
        "start_time": at(0),
        "end_time": "",
        "init_messages": [
            {
                "start_time": at(begin),
                "end_time": "" if end is None else at(end),
                "init_begin_message": "Invoking yum check-update",
                "init_end_message": message,
            }
            for begin, end, message in inits
        ],
    }


def cadence(**overrides) -> Cadence:
    base = {
        "final": 45.0,
        "final_late": 50.0,
        "short_gap": 5.0,
        "long_gap": 155.0,
        "installs": [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0],
        "start_lag": 2.0,
        "rate": 1.0,
    }
    return Cadence.from_dict(base | overrides)


def planned(c: Cadence, inits: list[Initiation], age: float) -> float:
    """Our seconds from the read to the planned one."""
    return (next_read(c, inits, NOW, age, min_gap=1.0) - NOW).total_seconds()


def test_initiations_are_read_relative_to_the_start_with_their_install_counts():
    ex = execution((0, 300, "Installed 3 updates: a, b, c"), (305, None, ""))
    assert initiations(ex) == [Initiation(0.0, 300.0, 3), Initiation(305.0, None, None)]
    assert initiations(execution((0, 45, "Installed 0 updates"))) == [Initiation(0.0, 45.0, 0)]


def test_the_age_comes_from_api_times_only():
    ex = execution((0, None, ""))
    assert api_age(ex, START + timedelta(seconds=30)) == 30.0
    assert api_age(ex, None) is None  # no Date header: the caller falls back


def test_a_running_scan_is_read_when_it_could_end():
    # 20 s into the first initiation: if it finds nothing it ends at 45 s
    assert planned(cadence(), [Initiation(0.0, None, None)], 20.0) == pytest.approx(25.0 + GRAIN)


def test_an_initiation_running_past_the_scan_is_installing_and_read_when_a_learnt_install_would_end():
    # 600 s in: the learnt installs still running by then end at 700 … 1000; reading when the
    # first would have ended, plus the pause and the last scan, sees it completed
    running = [Initiation(0.0, None, None)]
    assert planned(cadence(), running, 600.0) == pytest.approx(700 + 5 + 45 + GRAIN - 600)


def test_an_install_is_read_where_installs_end_and_not_in_between():
    # most installs take 300 s, a few 1,000 s: read after 300 s; past it, not before 1,000 s
    bimodal = cadence(installs=[300.0] * 8 + [1000.0] * 2)
    running = [Initiation(0.0, None, None)]
    assert planned(bimodal, running, 100.0) == pytest.approx(300 + 5 + 45 + GRAIN - 100)
    assert planned(bimodal, running, 351.0) == pytest.approx(1000 + 5 + 45 + GRAIN - 351)


def test_the_dearer_an_unseen_completion_the_sooner_an_install_is_read():
    running = [Initiation(0.0, None, None)]
    spread = [float(d) for d in range(100, 1001, 10)]
    eager = planned(cadence(installs=spread, read_price=1.0), running, 200.0)
    frugal = planned(cadence(installs=spread, read_price=1000.0), running, 200.0)
    assert eager <= 20 + 5 + 45 + GRAIN  # one of the next install ends
    assert frugal > 3 * eager  # a read is worth more than most installs' lateness
    # never sooner than the floor between two reads
    assert planned(cadence(installs=spread, read_price=1.0), running, 200.0) >= 1.0


def test_after_an_install_the_read_waits_for_the_pause_and_the_last_scan():
    inits = [Initiation(0.0, 300.0, 3)]
    assert planned(cadence(), inits, 302.0) == pytest.approx(300 + 5 + 45 + GRAIN - 302)
    # past that without a new initiation: the server is rebooting, the long pause applies
    assert planned(cadence(), inits, 352.0) == pytest.approx(300 + 155 + 45 + GRAIN - 352)


def test_the_last_scan_is_read_at_its_end():
    inits = [Initiation(0.0, 300.0, 3), Initiation(305.0, None, None)]
    assert planned(cadence(), inits, 320.0) == pytest.approx(305 + 45 + GRAIN - 320)


def test_the_time_scale_converts_api_seconds_to_ours_and_the_gap_has_a_floor():
    fast = cadence(rate=0.1)
    assert planned(fast, [Initiation(0.0, None, None)], 20.0) == pytest.approx(2.6)
    assert planned(fast, [Initiation(0.0, None, None)], 45.5) == pytest.approx(1.0)  # min_gap


def test_installs_longer_than_any_learnt_are_read_a_quarter_of_their_age_apart():
    # early in a rollout only the quick installs have completed; the longest end the rollout
    assert planned(cadence(), [Initiation(0.0, None, None)], 1200.0) == pytest.approx(300 + 5 + 45 + GRAIN)
    # a young install is read at least one pause and scan apart
    young = planned(cadence(installs=[]), [Initiation(0.0, None, None)], 60.0)
    assert young == pytest.approx(50 + 5 + 45 + GRAIN)


def test_a_cadence_is_learnt_only_from_enough_completions():
    shape = ExecutionShape(final=45.0, gaps=(5.0,), installs=(300.0,), start_lag=3.0)
    assert Cadence.learn([shape] * 2) is None
    learnt = Cadence.learn([shape] * 4 + [ExecutionShape(final=47.0, gaps=(155.0,), installs=(90.0,))])
    assert learnt is not None
    assert (learnt.final, learnt.short_gap, learnt.long_gap) == (45.0, 5.0, 155.0)
    assert learnt.installs == (90.0, 300.0, 300.0, 300.0, 300.0)
    assert learnt.start_lag == 3.0  # from those that know theirs
    assert Cadence.from_dict(learnt.as_dict()) == learnt


def test_the_first_read_waits_for_the_later_starts_of_a_request():
    # a request's servers start one after another: 0, 5, 10 … API seconds after the first
    shapes = [
        ExecutionShape(final=45.0, gaps=(), installs=(), start_lag=2.0 + 0.5 * (i % 4)) for i in range(20)
    ]
    learnt = Cadence.learn(shapes, rate=0.1)
    assert learnt is not None and learnt.start_lag == 3.5  # nine in ten started by then
    assert learnt.earliest_completion() == pytest.approx(3.5 + (45.0 + GRAIN) * 0.1)


def test_a_completed_execution_yields_its_shape():
    ex = execution((0, 300, "Installed 3 updates: a, b, c"), (305, 350, "Installed 0 updates")) | {
        "status": "completed",
        "end_time": at(350),
    }
    shape = ExecutionShape.of(ex, start_lag=2.5)
    assert shape == ExecutionShape(final=45.0, gaps=(5.0,), installs=(300.0,), start_lag=2.5)
    assert ExecutionShape.from_dict(shape.as_dict()) == shape
    assert ExecutionShape.of(execution((0, None, ""))) is None  # still running: nothing to learn


def test_a_measured_clock_rate_wins_over_the_configured_one():
    # an API whose clock runs 500 times ours (a simulator at time scale 0.002) while the
    # deployment says 1: reads planned at the configured rate would come 500 times too late
    measured = [ExecutionShape(final=45.0, gaps=(), installs=(), start_lag=0.0, rate=0.002)] * 3
    learnt = Cadence.learn(measured, rate=1.0)
    assert learnt is not None and learnt.rate == 0.002
    assert learnt.earliest_completion() == pytest.approx((45.0 + GRAIN) * 0.002)
    unmeasured = Cadence.learn([ExecutionShape(final=45.0, gaps=(), installs=())] * 3, rate=0.1)
    assert unmeasured is not None and unmeasured.rate == 0.1


def test_the_read_due_at_a_possible_completion_is_known():
    c = cadence()
    assert in_last_scan(c, [Initiation(0.0, 300.0, 3), Initiation(305.0, None, None)], 320.0)  # last scan
    assert not in_last_scan(c, [Initiation(0.0, 300.0, 3)], 302.0)  # an install over: the summary
    assert not in_last_scan(c, [Initiation(0.0, None, None)], 200.0)  # installing
    assert not in_last_scan(c, [], 10.0)


def detail(*starts: float) -> dict:
    return {"patches": [{"start_time": at(s)} for s in starts]}


def test_a_completed_detail_confirms_the_summary_only_if_its_last_scan_installed_nothing():
    scanning = [Initiation(0.0, 300.0, 3), Initiation(305.0, None, None)]
    assert final_scan_confirmed(scanning, detail(45, 120, 200), START)
    assert not final_scan_confirmed(scanning, detail(45, 320), START)  # that scan installed
    assert not final_scan_confirmed(scanning, {"patches": [{"start_time": ""}]}, START)  # unreadable: no
    # an install seen over: how many initiations followed only the summary says (never inferred)
    assert not final_scan_confirmed([Initiation(0.0, 300.0, 3)], detail(45, 120), START)


def test_a_completion_seen_in_the_detail_teaches_what_the_summary_showed():
    scanning = [Initiation(0.0, 300.0, 3), Initiation(305.0, None, None)]
    assert ExecutionShape.after_detail(scanning, 352.0) == ExecutionShape(
        final=47.0, gaps=(5.0,), installs=(300.0,)
    )
    assert ExecutionShape.after_detail([Initiation(0.0, 300.0, 3)], 352.0) is None


def test_a_cadence_made_again_from_the_same_values_keeps_its_worked_out_install_plan():
    c = cadence()
    assert Cadence.from_dict(c.as_dict()) is Cadence.from_dict(c.as_dict())
    assert Cadence.from_dict(c.as_dict()) == c
    assert Cadence.from_dict(cadence(final=46.0).as_dict()).final == 46.0
