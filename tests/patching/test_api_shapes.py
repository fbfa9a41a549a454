"""Parsing and validation of CLC answers, execution selection and patch rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from include.patching import api_shapes as s
from include.patching.clc_errors import ClcResponseError

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


def test_select_newest_execution_after_the_request():
    history = [
        ex("OLD", "2016-03-13T02:00:00Z"),
        ex("A", "2016-03-14T02:00:05Z", "pending"),
        ex("B", "2016-03-14T02:10:00Z", "pending"),
    ]
    assert s.select_execution(history, T0)["execution_id"] == "B"
    assert s.select_execution([history[0]], T0) is None
    early = [ex("SKEW", "2016-03-14T01:59:30Z")]
    assert s.select_execution(early, T0, skew_seconds=60)["execution_id"] == "SKEW"
    assert s.select_execution(early, T0, skew_seconds=10) is None


def test_reboots_from_initiations():
    three = ex(
        "X",
        "2016-03-14T02:00:05Z",
        ends=["Installed 3 updates: a, b, c", "Installed 1 updates: d", "Installed 0 updates"],
    )
    assert s.count_reboots(three) == 2
    unreadable = ex("Y", "2016-03-14T02:00:05Z", ends=["???", "done", "done"])
    assert s.count_reboots(unreadable) == 2  # initiations minus one
    assert s.count_reboots(ex("Z", "2016-03-14T02:00:05Z")) == 0


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
    rows = s.patch_rows(s.parse_detail(detail, "GET detail"))
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


def test_batch_answer_parsing():
    items = s.parse_batch(
        [
            {
                "server": "VA1DEMOWEB01",
                "isQueued": True,
                "links": [{"rel": "status", "href": "/v2/operations/demo/status/va1-1", "id": "va1-1"}],
            },
            {"server": "va1demoweb02", "isQueued": False, "errorMessage": "not in a valid state"},
        ],
        "POST ops",
    )
    assert items[0] == s.BatchItem("va1demoweb01", True, "va1-1", None)
    assert items[1].error == "not in a valid state" and items[1].job_id is None


@pytest.mark.parametrize(
    ("func", "body", "problem"),
    [
        (s.parse_login, {"accountAlias": "DEMO"}, "missing field 'bearerToken'"),
        (s.parse_batch, [{"server": "x", "isQueued": "yes"}], "[0].isQueued should be bool, got str"),
        (s.parse_summary, [{"execution_id": "E", "status": "p", "start_time": "soon"}], "is not a time"),
        (s.parse_group, {"id": "g", "name": "n", "groups": [{"id": 3}]}, ".groups[0].id should be str"),
        (s.root_group_id, {"id": "va1", "links": [{"rel": "self"}]}, "no 'group' link"),
        (s.parse_datacenters, {"id": "va1"}, "body should be list, got dict"),
    ],
)
def test_malformed_bodies(func, body, problem):
    with pytest.raises(ClcResponseError) as err:
        func(body, "GET /v2/thing")
    assert str(err.value).startswith("malformed response from GET /v2/thing: ")
    assert problem in str(err.value)


def test_times_tolerate_empty_and_null():
    assert s.parse_time("") is None and s.parse_time(None) is None
    assert s.parse_time("2016-03-14T02:00:00Z") == T0
    assert s.iso(T0) == "2016-03-14T02:00:00Z"


def test_select_execution_ignores_executions_known_before_the_request():
    from datetime import UTC, datetime

    from include.patching.api_shapes import select_execution

    since = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    old = {"execution_id": "VA1-000001", "status": "completed", "start_time": "2026-11-27T15:00:00Z"}
    new = {"execution_id": "VA1-000002", "status": "pending", "start_time": "2026-11-27T14:00:00Z"}
    assert select_execution([old], since, known=["VA1-000001"]) is None
    assert select_execution([old, new], since, known=["VA1-000001"]) == new
    assert select_execution([old, new], since) == old  # without the snapshot the clock alone decides
