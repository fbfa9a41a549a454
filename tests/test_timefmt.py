"""The one UTC text form of the evidence (include/timefmt.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from include.timefmt import parse_iso8601, parse_utc_text, utc_text, utcnow


def test_a_moment_is_written_in_utc_to_the_second():
    berlin = timezone(timedelta(hours=1))
    assert utc_text(datetime(2026, 11, 27, 15, 0, 0, 999_999, tzinfo=berlin)) == "2026-11-27T14:00:00Z"


def test_the_text_reads_back_as_the_same_aware_moment():
    moment = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    assert parse_utc_text(utc_text(moment)) == moment


def test_anything_else_reads_as_none():
    for text in (None, "", "2026-11-27T14:00:00+00:00", "2026-11-27 14:00:00", "soon"):
        assert parse_utc_text(text) is None


def test_api_times_are_read_in_any_iso8601_form_and_tolerate_empty_and_null():
    t0 = datetime(2016, 3, 14, 2, 0, 0, tzinfo=UTC)
    assert parse_iso8601("") is None and parse_iso8601(None) is None and parse_iso8601("soon") is None
    assert parse_iso8601("2016-03-14T02:00:00Z") == t0
    assert parse_iso8601("2016-03-14T03:00:00+01:00") == t0
    assert parse_iso8601("2016-03-14T02:00:00") == t0  # no offset: UTC
    assert utc_text(t0) == "2016-03-14T02:00:00Z"


def test_utcnow_is_aware_utc():
    assert utcnow().utcoffset() == timedelta(0)
