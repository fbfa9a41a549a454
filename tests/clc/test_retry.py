"""Full-jitter backoff, Retry-After parsing, and the one retry decision both clients follow."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from include.clc.endpoints import CallKind
from include.clc.retry import (
    Action,
    Answer,
    Decision,
    Delivery,
    NoAnswer,
    RetryPolicy,
    decide,
    parse_retry_after,
)


def test_full_jitter_is_bounded_by_the_exponential_ceiling():
    policy = RetryPolicy(attempts=6, base=1.0, cap=10.0, rand=lambda: 1.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert RetryPolicy(rand=lambda: 0.0).delay(3) == 0.0


def test_retry_after_wins_but_is_capped():
    policy = RetryPolicy(cap=30.0, rand=lambda: 0.0)
    assert policy.delay(1, retry_after=12.0) == 12.0
    assert policy.delay(1, retry_after=3600.0) == 30.0


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(formatdate(1_000_100, usegmt=True), now=1_000_000) == pytest.approx(100.0)
    assert parse_retry_after(formatdate(999_000, usegmt=True), now=1_000_000) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_policy_validation():
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        RetryPolicy(attempts=0)


def policy() -> RetryPolicy:
    """3 attempts; full jitter with rand 0.5: 0.5 s after attempt 1, 1.0 s after attempt 2; cap 8 s."""
    return RetryPolicy(attempts=3, base=1.0, cap=8.0, rand=lambda: 0.5)


READ, BATCH, SUBMIT, LOGIN = CallKind.READ, CallKind.BATCH, CallKind.SUBMIT, CallKind.LOGIN
REFUSED = NoAnswer(Delivery.NEVER_SENT, "ConnectionError")
READ_TIMEOUT = NoAnswer(Delivery.MAYBE_SENT, "ReadTimeout")


@pytest.mark.parametrize(
    ("kind", "outcome", "attempt", "expected"),
    [
        # 429 / 503: Retry-After honoured (capped), else full jitter; for every kind of call
        (READ, Answer(429, retry_after="7"), 1, Decision(Action.RETRY, 7.0, "HTTP 429")),
        (READ, Answer(429, retry_after="3600"), 1, Decision(Action.RETRY, 8.0, "HTTP 429")),
        (READ, Answer(503), 2, Decision(Action.RETRY, 1.0, "HTTP 503")),
        (SUBMIT, Answer(429, retry_after="2"), 1, Decision(Action.RETRY, 2.0, "HTTP 429")),
        (SUBMIT, Answer(503), 1, Decision(Action.RETRY, 0.5, "HTTP 503")),
        (LOGIN, Answer(503), 1, Decision(Action.RETRY, 0.5, "HTTP 503")),
        # 500 on a GET (and an idempotent batch) is retried; its Retry-After means nothing
        (READ, Answer(500, retry_after="7"), 1, Decision(Action.RETRY, 0.5, "HTTP 500")),
        (BATCH, Answer(502), 1, Decision(Action.RETRY, 0.5, "HTTP 502")),
        # ... the same 500 on executePackage may have been processed: never resent (I1)
        (SUBMIT, Answer(500), 1, Decision(Action.POSSIBLY_SUBMITTED, reason="HTTP 500")),
        (SUBMIT, Answer(504), 1, Decision(Action.POSSIBLY_SUBMITTED, reason="HTTP 504")),
        # out of attempts: the last answer is the result (the caller raises its error)
        (READ, Answer(500), 3, Decision(Action.ANSWER, reason="HTTP 500")),
        (SUBMIT, Answer(503), 3, Decision(Action.ANSWER, reason="HTTP 503")),
        # no answer: refused before sending vs timed out after sending
        (READ, REFUSED, 1, Decision(Action.RETRY, 0.5, "ConnectionError")),
        (SUBMIT, REFUSED, 1, Decision(Action.RETRY, 0.5, "ConnectionError")),
        (READ, READ_TIMEOUT, 2, Decision(Action.RETRY, 1.0, "ReadTimeout")),
        (SUBMIT, READ_TIMEOUT, 1, Decision(Action.POSSIBLY_SUBMITTED, reason="ReadTimeout")),
        (READ, READ_TIMEOUT, 3, Decision(Action.GIVE_UP, reason="ReadTimeout")),
        (SUBMIT, REFUSED, 3, Decision(Action.GIVE_UP, reason="ConnectionError")),
        # permanent answers are never retried
        (READ, Answer(400), 1, Decision(Action.ANSWER, reason="HTTP 400")),
        (BATCH, Answer(400), 1, Decision(Action.ANSWER, reason="HTTP 400")),
        (READ, Answer(403), 1, Decision(Action.ANSWER, reason="HTTP 403")),
        (LOGIN, Answer(400), 1, Decision(Action.ANSWER, reason="HTTP 400")),
        (LOGIN, Answer(401), 1, Decision(Action.ANSWER, reason="HTTP 401")),
        (READ, Answer(200, b"{}"), 1, Decision(Action.ANSWER, reason="HTTP 200")),
    ],
)
def test_the_retry_decision_table(kind, outcome, attempt, expected):
    assert decide(kind, outcome, attempt, policy()) == expected


@pytest.mark.parametrize("kind", [READ, BATCH, SUBMIT])
def test_a_401_earns_exactly_one_fresh_login(kind):
    assert decide(kind, Answer(401), 1, policy()) == Decision(Action.RELOGIN, reason="HTTP 401")
    assert decide(kind, Answer(401), 1, policy(), relogged=True) == Decision(Action.ANSWER, reason="HTTP 401")


def test_call_kinds_say_what_may_be_repeated():
    assert [k.idempotent for k in (LOGIN, READ, BATCH, SUBMIT)] == [True, True, True, False]
    assert [k.authenticated for k in (LOGIN, READ, BATCH, SUBMIT)] == [False, True, True, True]
    assert [k.answers_per_server for k in (LOGIN, READ, BATCH, SUBMIT)] == [False, False, True, True]
