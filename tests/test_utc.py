"""UTC instants in the API's and patchflow's ISO-8601 ``Z`` form."""

from __future__ import annotations

from datetime import UTC, datetime

from include import utc as s

T0 = datetime(2016, 3, 14, 2, 0, 0, tzinfo=UTC)


def test_times_tolerate_empty_and_null():
    assert s.parse_time("") is None and s.parse_time(None) is None
    assert s.parse_time("2016-03-14T02:00:00Z") == T0
    assert s.iso(T0) == "2016-03-14T02:00:00Z"
