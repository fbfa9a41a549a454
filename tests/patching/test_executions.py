"""What the patching service's answers mean for a run: our execution, attempts, final verdicts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from include.clc.shapes import parse_detail
from include.patching import executions as s
from include.timefmt import utc_text

T0 = datetime(2016, 3, 14, 2, 0, 0, tzinfo=UTC)


def ex(eid: str, start: str, status: str = "completed", ends: list[str] | None = None) -> dict:
    msgs = [
        {
            "start_time": start,
            "end_time": "",
            "init_begin_message": "Invoking yum check-update",
            "init_end_message": m,
        }
        for m in (ends or [])
    ]
    return {"execution_id": eid, "status": status, "start_time": start, "end_time": "", "init_messages": msgs}


def test_the_new_execution_is_the_newest_one_not_known_before_the_request():
    history = [
        ex("OLD", "2016-03-13T02:00:00Z"),
        ex("A", "2016-03-14T02:00:05Z", "pending"),
        ex("B", "2016-03-14T02:10:00Z", "pending"),
    ]
    assert s.select_execution(history, known=["OLD"])["execution_id"] == "B"
    assert s.select_execution(history, known=["OLD", "A", "B"]) is None
    assert s.select_execution([], known=[]) is None


@pytest.mark.parametrize("minutes", [-10, 10, -60 * 24 * 365 * 10])
def test_selection_never_compares_clocks(minutes):
    """I8: the API's clock minutes (or years) behind or ahead of ours changes nothing."""
    from datetime import timedelta

    requested = datetime.now(UTC)
    api_now = requested + timedelta(minutes=minutes)
    old = ex("VA1-1", utc_text(api_now - timedelta(days=30)))
    new = ex("VA1-2", utc_text(api_now + timedelta(seconds=5)), "pending")
    assert s.select_execution([old, new], known=["VA1-1"], requested_at=requested) == new
    assert s.select_execution([old], known=["VA1-1"], requested_at=requested) is None


def test_among_new_executions_the_api_start_time_then_the_list_order_decides():
    a, b = ex("A", "2016-03-14T02:10:00Z"), ex("B", "2016-03-14T02:00:05Z")
    assert s.select_execution([a, b], known=[])["execution_id"] == "A"
    same = [ex("X", "2016-03-14T02:00:05Z"), ex("Y", "2016-03-14T02:00:05Z")]
    assert s.select_execution(same, known=[])["execution_id"] == "Y"


@pytest.mark.parametrize("years", [0, -10, 10])
def test_with_the_api_time_before_the_request_ours_is_the_newest_dated_at_or_after_it(years):
    """``not_before`` is on the API's clock, as the start times are: ours is never compared."""
    from datetime import timedelta

    api_before = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC) + timedelta(days=365 * years)
    old = ex("OLD", utc_text(api_before - timedelta(days=30)))
    edge = ex("EDGE", utc_text(api_before - timedelta(seconds=1)), "pending")  # someone else's, just before
    ours = ex("OURS", utc_text(api_before + timedelta(seconds=40)), "pending")
    requested = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)  # our clock: not used by this rule
    assert s.select_execution([old, edge, ours], None, requested, api_before) == ours
    assert s.select_execution([old, edge], None, requested, api_before) is None
    assert s.select_execution([ours, old], None, None, api_before) == ours  # the list order aside
    same_second = ex("SAME", utc_text(api_before), "pending")
    assert s.select_execution([old, same_second], None, requested, api_before) == same_second


def test_legacy_entries_without_a_snapshot_fall_back_to_the_request_time():
    history = [ex("OLD", "2016-03-13T02:00:00Z"), ex("NEW", "2016-03-14T02:00:05Z", "pending")]
    assert s.select_execution(history, None, T0)["execution_id"] == "NEW"
    assert s.select_execution(history[:1], None, T0) is None
    assert s.select_execution(history, None, None) is None


def test_attempts_are_the_initiations_listed():
    three = ex(
        "X",
        "2016-03-14T02:00:05Z",
        ends=["Installed 3 updates: a, b, c", "Installed 1 updates: d", "Installed 0 updates"],
    )
    assert s.attempt_count(three) == 3
    assert s.installed_per_initiation(three) == [3, 1, 0]
    assert s.attempt_count(ex("Z", "2016-03-14T02:00:05Z")) == 0


def test_patch_rows_parse_kb_and_result_codes():
    detail = {
        "execution_id": "VA1-1",
        "status": "completed",
        "patches": [
            {
                "patch_begin_message": "Security Update for Windows Server 2012 R2 (KB3138615)",
                "patch_end_message": "2",
                "status": "completed",
                "start_time": "2016-03-14T02:09:45Z",
                "end_time": "2016-03-14T02:12:02Z",
            },
            {
                "patch_begin_message": "openssl-1.0.1e-42.el6_7.4.x86_64",
                "patch_end_message": "4",
                "status": "failed",
            },
        ],
    }
    rows = s.patch_rows(parse_detail(detail, "GET detail"))
    assert rows[0] == {
        "name": "Security Update for Windows Server 2012 R2 (KB3138615)",
        "kb": "KB3138615",
        "result_code": 2,
        "status": "completed",
        "start_time": "2016-03-14T02:09:45Z",
        "end_time": "2016-03-14T02:12:02Z",
    }
    assert rows[1]["kb"] is None and rows[1]["end_time"] is None
    assert [s.patch_failed(r) for r in rows] == [False, True]


def attempt(name: str, status: str, start: str | None) -> dict:
    """One detail row as ``patch_rows`` parses it."""
    code = {"completed": "2", "failed": "4", "pending": "1"}[status]
    raw = {"patch_begin_message": name, "patch_end_message": code, "status": status, "start_time": start}
    return s.patch_rows({"patches": [raw]})[0]


def test_each_patch_is_judged_by_its_last_attempt():
    """§12 #36: a patch listed once per initiation that tried it; the last attempt counts (I8)."""
    rows = [
        attempt("openssl-1.0.1e-42.el6_7.4.x86_64", "failed", "2016-03-14T02:01:00Z"),
        attempt("sudo-1.8.6p3-20.el6_7.x86_64", "completed", "2016-03-14T02:05:00Z"),
        attempt("openssl-1.0.1e-42.el6_7.4.x86_64", "completed", "2016-03-14T02:20:00Z"),
    ]
    final = s.final_attempts(rows)
    assert [(r["name"], r["status"], r["attempts"]) for r in final] == [
        ("openssl-1.0.1e-42.el6_7.4.x86_64", "completed", 2),
        ("sudo-1.8.6p3-20.el6_7.x86_64", "completed", 1),
    ]
    assert not any(s.patch_failed(r) for r in final)


def test_windows_patches_are_identified_by_kb_and_a_later_failure_still_fails():
    rows = [
        attempt(
            "Security Update for Windows Server 2012 R2 (KB3138615)", "completed", "2016-03-14T02:01:00Z"
        ),
        attempt("Security Update (KB3138615)", "failed", "2016-03-14T02:30:00Z"),
    ]
    (final,) = s.final_attempts(rows)
    assert final["attempts"] == 2 and s.patch_failed(final)


def test_last_attempt_by_start_time_when_every_attempt_has_one_else_by_list_order():
    late_first = [
        attempt("bash-4.1.2", "completed", "2016-03-14T03:00:00Z"),
        attempt("bash-4.1.2", "failed", "2016-03-14T02:00:00Z"),
    ]
    assert s.final_attempts(late_first)[0]["status"] == "completed"
    untimed = [
        attempt("bash-4.1.2", "completed", "2016-03-14T03:00:00Z"),
        attempt("bash-4.1.2", "failed", None),
    ]
    assert s.final_attempts(untimed)[0]["status"] == "failed"
