"""Token lifetime from its claims, renewal on our clock, and what a client holds after login."""

from __future__ import annotations

from include.clc.shapes import Login
from include.clc.tokens import TokenState, TokenTimer, token_lifetime


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


def test_token_state_logs_in_when_empty_or_due_and_forgets_after_a_401():
    now = [0.0]
    state = TokenState(TokenTimer(time_scale=1.0, margin=300.0, clock=lambda: now[0]))
    assert state.needs_login() and state.token is None
    state.store(Login(jwt({"iat": 0, "exp": 3600}), "DEMO"))
    assert not state.needs_login() and state.login_alias == "DEMO"
    now[0] = 3300.0  # lifetime 3600 less the 300 s margin
    assert state.needs_login()
    state.store(Login(jwt({"iat": 0, "exp": 3600}), None))
    state.forget()
    assert state.needs_login() and state.token is None
