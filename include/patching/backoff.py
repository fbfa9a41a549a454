"""Retry timing and token renewal for the CLC clients (framework-free).

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

#: Documented token lifetime when the JWT declares none (reference §2: 14 days).
DEFAULT_TOKEN_LIFETIME = 14 * 24 * 3600.0
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


def token_lifetime(token: str) -> float:
    """Seconds the token declares it is valid: ``exp - iat`` (or ``exp - nbf``), read unverified.

    Only the *difference* of two claims is used, never ``exp`` itself: ``exp`` is a time on the
    API's clock, which may be far from ours. Falls back to the documented 14 days.
    """
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        start = claims.get("iat", claims.get("nbf"))
        lifetime = float(claims["exp"]) - float(start)
        if lifetime > 0:
            return lifetime
    except (IndexError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return DEFAULT_TOKEN_LIFETIME


@dataclass
class TokenTimer:
    """When to log in again, measured on OUR monotonic clock from when we received the token.

    The declared lifetime is in API seconds; ``time_scale`` converts it to ours (1.0 against the
    real API; the simulator's ``--time-scale`` against a fast simulator). The renewal comes
    ``margin`` seconds early, but never before half the lifetime, so a short-lived token costs
    one login per half-life, never one per request. A 401 still forces one fresh login.
    """

    time_scale: float = 1.0
    margin: float = 300.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    renew_at: float | None = None

    def received(self, token: str) -> None:
        lifetime = token_lifetime(token) * self.time_scale
        self.renew_at = self.clock() + max(lifetime - self.margin, lifetime / 2)

    def due(self) -> bool:
        return self.renew_at is None or self.clock() >= self.renew_at


def utcnow() -> datetime:
    return datetime.now(UTC)
