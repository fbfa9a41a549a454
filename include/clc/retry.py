"""When to send a CLC request again: the backoff timing and the one retry decision (framework-free).

Full-jitter exponential backoff: attempt ``n`` waits a uniform random time in
``[0, min(cap, base * 2**(n-1))]``; a ``Retry-After`` header (seconds or HTTP-date) from a
429/503 is honoured instead, capped at ``cap`` so a hostile header cannot stall a run
(invariant I7). ``sleep`` and ``rand`` are injectable so tests run instantly.

``decide`` is the whole retry policy of both clients: given what kind of call was made, what
came back (an HTTP answer, or no answer and whether the request can have reached the server)
and how many attempts were made, it says retry after N seconds, log in again, use the answer,
give up, or stop because the request may have been processed (invariant I1).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum

from include.clc.endpoints import CallKind

#: HTTP statuses worth retrying for an idempotent request.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Statuses that say "not processed, come back later": safe to retry even for a POST that
#: must not run twice. Assumption: the CLC front end (like any HTTP load balancer) answers
#: 429/503 before the request reaches the operation queue.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
#: Statuses whose ``Retry-After`` header is honoured.
RETRY_AFTER_STATUSES = frozenset({429, 503})


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


class Delivery(StrEnum):
    """Whether a request that got no answer can have reached the server."""

    NEVER_SENT = "never_sent"
    """Connection refused or connect timeout: the server never saw the request."""
    MAYBE_SENT = "maybe_sent"
    """Read timeout, dropped connection: the server may have processed it."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as the transport received it."""

    status: int
    body: bytes = b""
    retry_after: str | None = None
    """The raw ``Retry-After`` header, if any."""
    date: str | None = None
    """The raw ``Date`` header, if any: where the API's clock stood when it answered."""


@dataclass(frozen=True)
class NoAnswer:
    """A request that got no HTTP answer (the transport's exception, reduced to what matters)."""

    delivery: Delivery
    reason: str
    """The exception's class name: safe to log, never its text (it may hold headers)."""


Outcome = Answer | NoAnswer


class Action(StrEnum):
    RETRY = "retry"
    """Wait ``Decision.delay`` seconds, then send the same request again."""
    RELOGIN = "relogin"
    """The token was refused: log in again and resend (not counted as an attempt)."""
    ANSWER = "answer"
    """Use this answer: its body, or the error it carries (never retried)."""
    GIVE_UP = "give_up"
    """No answer on any attempt: a connection error."""
    POSSIBLY_SUBMITTED = "possibly_submitted"
    """A request that must not run twice may have been processed: never send it again (I1)."""


@dataclass(frozen=True)
class Decision:
    action: Action
    delay: float = 0.0
    reason: str = ""
    """What went wrong (``HTTP 503``, ``ConnectionError``), for the log and the error."""


def decide(
    kind: CallKind, outcome: Outcome, attempt: int, policy: RetryPolicy, *, relogged: bool = False
) -> Decision:
    """What to do after attempt number ``attempt`` (1-based) of a call of this kind.

    Idempotent calls are retried on connection failures, 429 (``Retry-After`` honoured) and
    500/502/503/504. A call that must not run twice (``CallKind.SUBMIT``) is retried only when
    it certainly was not processed (429/503, never sent); anything else that may have reached
    the server is ``POSSIBLY_SUBMITTED``. A 401 on an authenticated call earns one fresh login.
    """
    if isinstance(outcome, NoAnswer):
        return _after_no_answer(kind, outcome, attempt, policy)
    return _after_answer(kind, outcome, attempt, policy, relogged)


def _after_no_answer(kind: CallKind, outcome: NoAnswer, attempt: int, policy: RetryPolicy) -> Decision:
    if not kind.idempotent and outcome.delivery is Delivery.MAYBE_SENT:
        return Decision(Action.POSSIBLY_SUBMITTED, reason=outcome.reason)
    if attempt >= policy.attempts:
        return Decision(Action.GIVE_UP, reason=outcome.reason)
    return Decision(Action.RETRY, policy.delay(attempt), outcome.reason)


def _after_answer(
    kind: CallKind, answer: Answer, attempt: int, policy: RetryPolicy, relogged: bool
) -> Decision:
    status, reason = answer.status, f"HTTP {answer.status}"
    if status == 401 and kind.authenticated and not relogged:
        return Decision(Action.RELOGIN, reason=reason)
    retryable = RETRYABLE_STATUSES if kind.idempotent else NOT_PROCESSED_STATUSES
    if status in retryable and attempt < policy.attempts:
        hint = parse_retry_after(answer.retry_after) if status in RETRY_AFTER_STATUSES else None
        return Decision(Action.RETRY, policy.delay(attempt, hint), reason)
    if not kind.idempotent and status >= 500 and status not in NOT_PROCESSED_STATUSES:
        return Decision(Action.POSSIBLY_SUBMITTED, reason=reason)
    return Decision(Action.ANSWER, reason=reason)
