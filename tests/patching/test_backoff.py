"""Full-jitter backoff, Retry-After parsing and token renewal."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from include.patching.backoff import RetryPolicy, TokenTimer, parse_retry_after, token_lifetime


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


def jwt(claims: dict) -> str:
    import base64
    import json

    return "h." + base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=") + ".s"


def test_token_lifetime_is_a_difference_of_claims_never_a_time():
    # the API's clock is irrelevant: a token issued in 2016 or in 2090 declares the same lifetime
    assert token_lifetime(jwt({"nbf": 1_457_920_800, "exp": 1_457_920_800 + 3600})) == 3600
    assert token_lifetime(jwt({"iat": 3_800_000_000, "nbf": 0, "exp": 3_800_000_600})) == 600
    assert token_lifetime(jwt({"exp": 2_000_000})) == 14 * 24 * 3600  # no start claim: documented 14 days
    assert token_lifetime("not-a-jwt") == 14 * 24 * 3600


def test_token_timer_counts_on_our_clock_from_receipt():
    now = [1000.0]
    timer = TokenTimer(time_scale=1.0, margin=300.0, clock=lambda: now[0])
    assert timer.due()  # nothing received yet
    timer.received(jwt({"nbf": 1_457_920_800, "exp": 1_457_920_800 + 3600}))  # a 2016 token
    now[0] += 3299
    assert not timer.due()
    now[0] += 1
    assert timer.due()


def test_token_timer_scales_the_declared_lifetime_and_never_renews_per_request():
    now = [0.0]
    timer = TokenTimer(time_scale=0.01, margin=3.0, clock=lambda: now[0])
    timer.received(jwt({"nbf": 0, "exp": 14 * 24 * 3600}))  # 14 simulated days = 12096 s at 0.01
    now[0] = 12_092.0
    assert not timer.due()
    now[0] = 12_093.0
    assert timer.due()
    short = TokenTimer(time_scale=0.01, margin=3.0, clock=lambda: now[0])
    short.received(jwt({"nbf": 0, "exp": 60}))  # 0.6 s: shorter than the margin
    now[0] += 0.29
    assert not short.due()  # renewed after half its life, not before every request
