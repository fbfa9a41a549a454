"""Fault injection rules, configured at run time through ``/_sim/faults``.

HTTP faults (``error``, ``rate_limit``, ``latency``, ``drop``) match requests by route
template and/or method (shell-style wildcards allowed) and fire with a probability
``rate`` drawn from a per-rule RNG seeded from the simulator seed, so runs repeat
exactly. ``count`` limits how many times a rule fires ("the next 2 requests").
Other kinds act on tokens (``token_expiry``; ``revoke_tokens`` is a one-shot action)
or on one server (``stuck_execution``, ``no_return_from_reboot``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

HTTP_KINDS = ("error", "rate_limit", "latency", "drop")
TOKEN_KINDS = ("token_expiry",)
SERVER_KINDS = ("stuck_execution", "no_return_from_reboot")
ACTION_KINDS = ("revoke_tokens",)
ALL_KINDS = HTTP_KINDS + TOKEN_KINDS + SERVER_KINDS + ACTION_KINDS


class FaultSpecError(ValueError):
    """The fault body is invalid; the message says which field and why."""


@dataclass
class FaultRule:
    id: int
    kind: str
    route: str | None = None  # route template, e.g. "/v2/operations/{alias}/status/{jobId}"
    method: str | None = None
    status: int = 500
    rate: float = 1.0
    count: int | None = None  # remaining firings; None = unlimited
    retry_after: int = 1
    latency_ms: int = 0
    seconds: int = 0
    server: str | None = None
    fired: int = 0
    _rng: random.Random = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def active(self) -> bool:
        return self.count is None or self.count > 0

    def matches(self, method: str, route: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.route or fnmatchcase(route, self.route)

    def to_dict(self) -> dict:
        data = {"id": self.id, "kind": self.kind, "fired": self.fired, "remaining": self.count}
        if self.kind in HTTP_KINDS:
            data.update(route=self.route, method=self.method, rate=self.rate)
        if self.kind == "error":
            data["status"] = self.status
        if self.kind == "rate_limit":
            data["retry_after"] = self.retry_after
        if self.kind == "latency":
            data["latency_ms"] = self.latency_ms
        if self.kind == "token_expiry":
            data["seconds"] = self.seconds
        if self.kind in SERVER_KINDS:
            data["server"] = self.server
        return data


@dataclass
class Injection:
    """What the HTTP layer must do for one request."""

    latency_ms: int = 0
    status: int | None = None  # 500 / 503 / 429
    retry_after: int | None = None
    drop: bool = False
    rule_ids: list[int] = field(default_factory=list)


class FaultRegistry:
    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rules: list[FaultRule] = []
        self._next_id = 1

    def clear(self) -> None:
        self.rules.clear()

    def remove(self, rule_id: int) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def add(self, body: dict) -> FaultRule:
        """Validate a fault body and register it (``revoke_tokens`` is handled by the caller)."""
        if not isinstance(body, dict):
            raise FaultSpecError("the body must be a JSON object")
        kind = body.get("kind")
        if kind not in ALL_KINDS:
            raise FaultSpecError(f"kind: {kind!r} is not one of {', '.join(ALL_KINDS)}")
        allowed = {"kind", "route", "method", "rate", "count"}
        allowed |= {
            "error": {"status"},
            "rate_limit": {"retry_after"},
            "latency": {"latency_ms"},
            "token_expiry": {"seconds"},
            "stuck_execution": {"server"},
            "no_return_from_reboot": {"server"},
        }.get(kind, set())
        for key in body:
            if key not in allowed:
                raise FaultSpecError(
                    f"{key}: not a field of a {kind!r} fault (allowed: {', '.join(sorted(allowed))})"
                )
        rule = FaultRule(id=self._next_id, kind=kind)
        if "route" in body:
            route = body["route"]
            if not isinstance(route, str) or not route.strip():
                raise FaultSpecError(
                    "route: must be a non-empty string such as '/v2/operations/{alias}/status/{jobId}'"
                )
            route = route.strip()
            if " " in route:  # "GET /v2/..." form
                method, route = route.split(None, 1)
                rule.method = method.upper()
            rule.route = route
        if body.get("method") is not None:
            if not isinstance(body["method"], str):
                raise FaultSpecError("method: must be an HTTP method such as 'POST'")
            rule.method = body["method"].upper()
        rule.rate = _number(body, "rate", 1.0, 0.0, 1.0)
        if body.get("count") is not None:
            rule.count = int(_number(body, "count", 1, 1, 1_000_000))
        if kind == "error":
            rule.status = int(_number(body, "status", 500, 500, 599))
            if rule.status not in (500, 503):
                raise FaultSpecError("status: must be 500 or 503")
        elif kind == "rate_limit":
            rule.status = 429
            rule.retry_after = int(_number(body, "retry_after", 1, 0, 3600))
        elif kind == "latency":
            rule.latency_ms = int(_number(body, "latency_ms", 100, 0, 120_000))
        elif kind == "token_expiry":
            rule.seconds = int(_number(body, "seconds", 0, 0, 10**9))
        elif kind in SERVER_KINDS:
            server = body.get("server")
            if not isinstance(server, str) or not server.strip():
                raise FaultSpecError("server: the server id is required, e.g. 'va1demoweb01'")
            rule.server = server.strip().lower()
        rule._rng = random.Random(self.seed * 7919 + rule.id)
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def for_request(self, method: str, route: str) -> Injection:
        """Decide (and consume) the faults for one API request."""
        inj = Injection()
        for rule in self.rules:
            if rule.kind not in HTTP_KINDS or not rule.active or not rule.matches(method, route):
                continue
            if rule.kind in ("error", "rate_limit") and inj.status is not None:
                continue
            if rule.kind == "drop" and inj.drop:
                continue
            if rule.rate < 1.0 and rule._rng.random() >= rule.rate:
                continue
            if rule.count is not None:
                rule.count -= 1
            rule.fired += 1
            inj.rule_ids.append(rule.id)
            if rule.kind == "latency":
                inj.latency_ms += rule.latency_ms
            elif rule.kind == "drop":
                inj.drop = True
            else:
                inj.status = rule.status
                if rule.kind == "rate_limit":
                    inj.retry_after = rule.retry_after
        if inj.status is not None:
            inj.drop = False  # an injected error is answered, never dropped
        return inj

    def token_max_age(self) -> int | None:
        ages = [r.seconds for r in self.rules if r.kind == "token_expiry" and r.active]
        return min(ages) if ages else None

    def server_fault(self, server_id: str, kind: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.kind == kind and rule.server == server_id and rule.active:
                return rule
        return None

    def to_list(self) -> list[dict]:
        return [r.to_dict() for r in self.rules]


def _number(body: dict, key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FaultSpecError(f"{key}: must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise FaultSpecError(f"{key}: {value} is out of range ({lo}..{hi})")
    return value
