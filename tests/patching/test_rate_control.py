"""Concurrency / error-budget parsing (SSM-style counts and percentages)."""

from __future__ import annotations

import pytest

from include.patching.rate_control import budget_exhausted, max_concurrency, max_errors


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [
        ("50", 400, 50),
        (7, 3, 7),
        ("10%", 400, 40),
        ("10%", 5, 1),
        ("33%", 10, 4),
        ("100%", 9, 9),
        ("1%", 1, 1),
    ],
)
def test_concurrency(value, total, expected):
    assert max_concurrency(value, total) == expected


@pytest.mark.parametrize(
    ("value", "total", "expected"), [("0", 10, 0), (0, 10, 0), ("0%", 10, 0), ("10%", 25, 3), ("5", 2, 5)]
)
def test_errors(value, total, expected):
    assert max_errors(value, total) == expected


@pytest.mark.parametrize(
    ("func", "value", "message"),
    [
        (max_concurrency, "0", "max_concurrency must be at least 1"),
        (max_concurrency, "0%", "max_concurrency must be at least 1"),
        (max_concurrency, "150%", "max_concurrency percentage must be between 0% and 100%"),
        (max_concurrency, "abc", "max_concurrency must be a count or a percentage like '10%', got 'abc'"),
        (max_concurrency, True, "max_concurrency must be a count"),
        (max_concurrency, -3, "max_concurrency must not be negative"),
        (max_errors, "1.5", "max_errors must be a count or a percentage"),
        (max_errors, "200%", "max_errors percentage must be between"),
    ],
)
def test_invalid_values_name_the_parameter(func, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        func(value, 10)


def test_budget_is_exhausted_only_when_exceeded():
    assert not budget_exhausted(0, 0)
    assert budget_exhausted(1, 0)
    assert not budget_exhausted(3, 3) and budget_exhausted(4, 3)
