"""Full-jitter backoff, Retry-After parsing and JWT expiry."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from include.patching.backoff import RetryPolicy, parse_retry_after, token_expiry


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


def test_token_expiry_reads_exp_or_falls_back():
    import base64
    import json

    claims = base64.urlsafe_b64encode(json.dumps({"exp": 2_000_000}).encode()).decode().rstrip("=")
    assert token_expiry(f"h.{claims}.s", issued_at=0) == 2_000_000
    no_exp = base64.urlsafe_b64encode(b'{"nbf": 1}').decode().rstrip("=")
    assert token_expiry(f"h.{no_exp}.s", issued_at=10) == 10 + 14 * 24 * 3600
