"""Concurrency and error-budget limits, in the style of AWS SSM ``MaxConcurrency``/``MaxErrors``.

A limit is a count (``50``, ``"50"``) or a percentage of the package's target count
(``"10%"``), rounded up, written with the ASCII digits 0-9. Concurrency is at least 1; the
error budget may be 0 (stop after the first error). Invalid input raises ``ValueError`` naming the parameter.
"""

from __future__ import annotations

import math
import re

_LIMIT = re.compile(r"^\s*([0-9]+)\s*(%?)\s*$", re.ASCII)
"""ASCII digits only: ``int()`` would silently read Arabic-Indic "\u0665\u0660" as 50."""

DEFAULT_MAX_CONCURRENCY = "50"
DEFAULT_MAX_ERRORS = "0"


def limit_problem(value: object, *, minimum: int) -> str | None:
    """Why ``value`` is no valid limit (a phrase to follow the parameter's name), or None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return f"must be a count like '50' or a percentage like '10%', got {value!r}"
    if isinstance(value, int):
        number, percent = value, False
    else:
        if any(ch.isdigit() and not ch.isascii() for ch in value):
            return f"must be written with the digits 0-9, got {value!r}"
        match = _LIMIT.match(value)
        if not match:
            if value.strip().startswith("-"):
                return f"must be a count or a percentage like '10%' and not negative, got {value!r}"
            return f"must be a count or a percentage like '10%', got {value!r}"
        number, percent = int(match.group(1)), bool(match.group(2))
    if number < 0:
        return f"must not be negative, got {value!r}"
    if percent and number > 100:
        return f"percentage must be between 0% and 100%, got {value!r}"
    if number < minimum:
        return f"must be at least {minimum}, got {value!r}"
    return None


def parse_limit(value: int | str, total: int, *, name: str, minimum: int) -> int:
    """Resolve ``value`` against ``total`` targets; ``minimum`` is 1 for concurrency, 0 for errors."""
    problem = limit_problem(value, minimum=minimum)
    if problem:
        raise ValueError(f"{name} {problem}")
    if isinstance(value, int):
        return value
    match = _LIMIT.match(value)
    assert match is not None  # limit_problem accepted it
    number = int(match.group(1))
    if match.group(2):
        return max(math.ceil(total * number / 100), minimum)
    return number


def max_concurrency(value: int | str, total: int) -> int:
    return parse_limit(value, total, name="max_concurrency", minimum=1)


def max_errors(value: int | str, total: int) -> int:
    return parse_limit(value, total, name="max_errors", minimum=0)


def budget_exhausted(errors: int, limit: int) -> bool:
    """SSM semantics: stop starting new targets once errors exceed the limit."""
    return errors > limit
