"""The one UTC text form of the evidence (include/timefmt.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from include.timefmt import parse_utc_text, utc_text


def test_a_moment_is_written_in_utc_to_the_second():
    berlin = timezone(timedelta(hours=1))
    assert utc_text(datetime(2026, 11, 27, 15, 0, 0, 999_999, tzinfo=berlin)) == "2026-11-27T14:00:00Z"


def test_the_text_reads_back_as_the_same_aware_moment():
    moment = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    assert parse_utc_text(utc_text(moment)) == moment


def test_anything_else_reads_as_none():
    for text in (None, "", "2026-11-27T14:00:00+00:00", "2026-11-27 14:00:00", "soon"):
        assert parse_utc_text(text) is None
