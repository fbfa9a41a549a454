"""Concurrency and error-budget limits, in the style of AWS SSM ``MaxConcurrency``/``MaxErrors``.

A limit is a count (``50``, ``"50"``) or a percentage of the package's target count
(``"10%"``), rounded up. Concurrency is at least 1; the error budget may be 0 (stop after
the first error). Invalid input raises ``ValueError`` naming the parameter.
"""

from __future__ import annotations

import math
import re

_LIMIT = re.compile(r"^\s*(\d+)\s*(%?)\s*$")

DEFAULT_MAX_CONCURRENCY = "50"
DEFAULT_MAX_ERRORS = "0"


def parse_limit(value: int | str, total: int, *, name: str, minimum: int) -> int:
    """Resolve ``value`` against ``total`` targets; ``minimum`` is 1 for concurrency, 0 for errors."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a count or a percentage like '10%', got {value!r}")
    if isinstance(value, int):
        number, percent = value, False
    else:
        match = _LIMIT.match(str(value))
        if not match:
            raise ValueError(f"{name} must be a count or a percentage like '10%', got {value!r}")
        number, percent = int(match.group(1)), bool(match.group(2))
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    if percent:
        if number > 100:
            raise ValueError(f"{name} percentage must be between 0% and 100%, got {value!r}")
        if minimum >= 1 and number == 0:
            raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
        resolved = math.ceil(total * number / 100)
        return max(resolved, minimum)
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return number


def max_concurrency(value: int | str, total: int) -> int:
    return parse_limit(value, total, name="max_concurrency", minimum=1)


def max_errors(value: int | str, total: int) -> int:
    return parse_limit(value, total, name="max_errors", minimum=0)


def budget_exhausted(errors: int, limit: int) -> bool:
    """SSM semantics: stop starting new targets once errors exceed the limit."""
    return errors > limit
