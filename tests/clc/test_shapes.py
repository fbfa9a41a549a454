"""Parsing and validation of CLC answers: each malformed body names its endpoint and problem."""

from __future__ import annotations

import pytest

from include.clc import shapes as s
from include.clc.errors import ClcResponseError


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
        (s.parse_summary, {"not": "a list"}, "body should be list, got dict"),
        (s.parse_summary, [{"execution_id": "X", "status": "pending"}], "missing field '[0].start_time'"),
        (s.parse_queue_status, {"state": "done"}, "missing field 'status'"),
        (s.parse_queue_status, {"status": "weird"}, "unknown queue status 'weird'"),
        (s.parse_server, ["x"], "body should be dict"),
    ],
)
def test_malformed_bodies(func, body, problem):
    with pytest.raises(ClcResponseError) as err:
        func(body, "GET /v2/thing")
    assert str(err.value).startswith("malformed response from GET /v2/thing: ")
    assert problem in str(err.value)
