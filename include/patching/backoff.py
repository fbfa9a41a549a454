"""Retry timing and token lifetime for the CLC clients (framework-free).

Full-jitter exponential backoff: attempt ``n`` waits a uniform random time in
``[0, min(cap, base * 2**(n-1))]``; a ``Retry-After`` header (seconds or HTTP-date) from a
429/503 is honoured instead, capped at ``cap`` so a hostile header cannot stall a run
(invariant I7). ``sleep`` and ``rand`` are injectable so tests run instantly.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: Documented token lifetime when the JWT carries no usable ``exp`` claim.
DEFAULT_TOKEN_LIFETIME = 14 * 24 * 3600.0
#: Re-login this long before the token's expiry.
TOKEN_REFRESH_MARGIN = 300.0
#: HTTP statuses worth retrying for an idempotent request.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Statuses that say "not processed, come back later": safe to retry even for a POST that
#: must not run twice. Assumption: the CLC front end (like any HTTP load balancer) answers
#: 429/503 before the request reaches the operation queue.
NOT_PROCESSED_STATUSES = frozenset({429, 503})


@dataclass
class RetryPolicy:
    """How often and how long to retry one request."""

    attempts: int = 5
    base: float = 1.0
    cap: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    rand: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"retry attempts must be >= 1, got {self.attempts}")
        if self.base < 0 or self.cap < 0:
            raise ValueError("retry base and cap must be >= 0")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        ceiling = min(self.cap, self.base * (2 ** (attempt - 1)))
        return self.rand() * ceiling


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now, or None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def token_expiry(token: str, issued_at: float) -> float:
    """Epoch seconds when ``token`` expires, read from its JWT ``exp`` claim without verifying.

    Only timing is taken from the token; it is never trusted for anything else. Falls back
    to the documented 14-day lifetime.
    """
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        exp = float(claims["exp"])
        if exp > 0:
            return exp
    except (IndexError, ValueError, KeyError, TypeError):
        pass
    return issued_at + DEFAULT_TOKEN_LIFETIME


def utcnow() -> datetime:
    return datetime.now(UTC)
