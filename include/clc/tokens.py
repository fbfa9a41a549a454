"""The bearer token: how long it lives, when to log in again, and what login told us (framework-free)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from include.clc.shapes import Login

#: Documented token lifetime when the JWT declares none (reference §2: 14 days).
DEFAULT_TOKEN_LIFETIME = 14 * 24 * 3600.0


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


@dataclass
class TokenState:
    """The token a client holds and the alias its login returned.

    The transports wrap ``needs_login``/``store`` in their own lock (a thread lock for the
    worker hook, an asyncio lock for the triggerer's client) so concurrent calls log in once.
    """

    timer: TokenTimer = field(default_factory=TokenTimer)
    token: str | None = None
    login_alias: str | None = None

    def needs_login(self) -> bool:
        return self.token is None or self.timer.due()

    def store(self, login: Login) -> None:
        self.token, self.login_alias = login.token, login.alias
        self.timer.received(login.token)

    def forget(self) -> None:
        """Drop the token after a 401, so the next request logs in again."""
        self.token = None
