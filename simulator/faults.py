"""Fault injection rules, configured at run time through ``/_sim/faults``.

HTTP faults (``error``, ``rate_limit``, ``latency``, ``drop``, ``truncate``, ``garbage``)
match requests by route template and/or method (shell-style wildcards allowed) and fire
with a probability ``rate`` drawn from a per-rule RNG seeded from the simulator seed, so
runs repeat exactly. ``count`` limits how many times a rule fires ("the next 2 requests").
Other kinds act on tokens (``token_expiry``; ``revoke_tokens`` is a one-shot action), on
the platform queue (``queue_delay``), on one server (``stuck_execution``,
``no_return_from_reboot``) or on maintenance changes during a reboot
(``refuse_during_reboot``, one server or all), and on snapshot jobs (``snapshot_create_fails``,
``restore_fails``, ``restore_hangs``, one server or all).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase


class FaultKind(StrEnum):
    ERROR = "error"
    RATE_LIMIT = "rate_limit"
    LATENCY = "latency"
    DROP = "drop"
    TRUNCATE = "truncate"
    GARBAGE = "garbage"
    TOKEN_EXPIRY = "token_expiry"
    QUEUE_DELAY = "queue_delay"
    STUCK_EXECUTION = "stuck_execution"
    NO_RETURN_FROM_REBOOT = "no_return_from_reboot"
    UNHEALTHY_AFTER_PATCH = "unhealthy_after_patch"
    REFUSE_DURING_REBOOT = "refuse_during_reboot"
    SNAPSHOT_CREATE_FAILS = "snapshot_create_fails"
    RESTORE_FAILS = "restore_fails"
    RESTORE_HANGS = "restore_hangs"
    REVOKE_TOKENS = "revoke_tokens"


class GarbageBody(StrEnum):
    """What a ``garbage`` fault answers instead of the real body."""

    HTML = "html"  # an HTML page, as from a proxy or load balancer
    WRONG_TYPE = "wrong_type"  # valid JSON of the wrong type (object <-> array)
    EMPTY = "empty"  # no body at all, JSON media type


HTTP_KINDS = (
    FaultKind.ERROR,
    FaultKind.RATE_LIMIT,
    FaultKind.LATENCY,
    FaultKind.DROP,
    FaultKind.TRUNCATE,
    FaultKind.GARBAGE,
)
#: HTTP kinds that replace or cut the answer (at most one of them acts on a request)
RESPONSE_KINDS = (FaultKind.DROP, FaultKind.TRUNCATE, FaultKind.GARBAGE)
TOKEN_KINDS = (FaultKind.TOKEN_EXPIRY,)
QUEUE_KINDS = (FaultKind.QUEUE_DELAY,)
SERVER_KINDS = (FaultKind.STUCK_EXECUTION, FaultKind.NO_RETURN_FROM_REBOOT, FaultKind.UNHEALTHY_AFTER_PATCH)
MAINTENANCE_KINDS = (FaultKind.REFUSE_DURING_REBOOT,)
SNAPSHOT_KINDS = (FaultKind.SNAPSHOT_CREATE_FAILS, FaultKind.RESTORE_FAILS, FaultKind.RESTORE_HANGS)
#: kinds decided when an operation is queued, for one server or (no ``server``) for all
OPERATION_KINDS = MAINTENANCE_KINDS + SNAPSHOT_KINDS
ACTION_KINDS = (FaultKind.REVOKE_TOKENS,)
ALL_KINDS = HTTP_KINDS + TOKEN_KINDS + QUEUE_KINDS + SERVER_KINDS + OPERATION_KINDS + ACTION_KINDS

_MATCH_FIELDS = {"route", "method", "rate"}
#: fields each kind accepts besides ``kind``
_FIELDS: dict[FaultKind, set[str]] = {
    FaultKind.ERROR: _MATCH_FIELDS | {"count", "status"},
    FaultKind.RATE_LIMIT: _MATCH_FIELDS | {"count", "retry_after"},
    FaultKind.LATENCY: _MATCH_FIELDS | {"count", "latency_ms"},
    FaultKind.DROP: _MATCH_FIELDS | {"count"},
    FaultKind.TRUNCATE: _MATCH_FIELDS | {"count", "keep", "cut_connection"},
    FaultKind.GARBAGE: _MATCH_FIELDS | {"count", "status", "body", "processed"},
    FaultKind.TOKEN_EXPIRY: _MATCH_FIELDS | {"count", "seconds"},
    FaultKind.QUEUE_DELAY: {"count", "seconds"},
    FaultKind.STUCK_EXECUTION: _MATCH_FIELDS | {"count", "server"},
    FaultKind.NO_RETURN_FROM_REBOOT: _MATCH_FIELDS | {"count", "server"},
    FaultKind.UNHEALTHY_AFTER_PATCH: {"server"},
    FaultKind.REFUSE_DURING_REBOOT: {"count", "server"},
    FaultKind.SNAPSHOT_CREATE_FAILS: {"count", "server"},
    FaultKind.RESTORE_FAILS: {"count", "server"},
    FaultKind.RESTORE_HANGS: {"count", "server"},
}


class FaultSpecError(ValueError):
    """The fault body is invalid; the message says which field and why."""


@dataclass
class FaultRule:
    id: int
    kind: FaultKind
    route: str | None = None  # route template, e.g. "/v2/operations/{alias}/status/{jobId}"
    method: str | None = None
    status: int = 500
    rate: float = 1.0
    count: int | None = None  # remaining firings; None = unlimited
    retry_after: int = 1
    latency_ms: int = 0
    seconds: float = 0
    server: str | None = None
    keep: float = 0.5  # truncate: share of the body that is sent
    cut_connection: bool = False  # truncate: announce the full length, then close
    body: GarbageBody = GarbageBody.HTML  # garbage: what replaces the answer
    processed: bool = True  # garbage: the request is still carried out
    fired: int = 0
    # Faults.add() replaces it with one seeded from the fault set's seed (reproducible rates).
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def active(self) -> bool:
        return self.count is None or self.count > 0

    def matches(self, method: str, route: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.route or fnmatchcase(route, self.route)

    def consume(self) -> None:
        """Record one firing (and use up one of ``count``)."""
        if self.count is not None:
            self.count -= 1
        self.fired += 1

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "id": self.id,
            "kind": str(self.kind),
            "fired": self.fired,
            "remaining": self.count,
        }
        if self.kind in HTTP_KINDS:
            data.update(route=self.route, method=self.method, rate=self.rate)
        extra_by_kind: dict[FaultKind, dict[str, object]] = {
            FaultKind.ERROR: {"status": self.status},
            FaultKind.RATE_LIMIT: {"retry_after": self.retry_after},
            FaultKind.LATENCY: {"latency_ms": self.latency_ms},
            FaultKind.TRUNCATE: {"keep": self.keep, "cut_connection": self.cut_connection},
            FaultKind.GARBAGE: {"status": self.status, "body": str(self.body), "processed": self.processed},
            FaultKind.TOKEN_EXPIRY: {"seconds": self.seconds},
            FaultKind.QUEUE_DELAY: {"seconds": self.seconds},
        }
        data.update(extra_by_kind.get(self.kind, {}))
        if self.kind in SERVER_KINDS + OPERATION_KINDS:
            data["server"] = self.server
        return data


@dataclass
class ResponseFault:
    """How the answer to one request is replaced or cut (``drop``/``truncate``/``garbage``)."""

    kind: FaultKind
    keep: float = 0.5
    cut_connection: bool = False
    status: int = 200
    body: GarbageBody = GarbageBody.HTML
    processed: bool = True


@dataclass
class Injection:
    """What the HTTP layer must do for one request."""

    latency_ms: int = 0
    status: int | None = None  # 500 / 503 / 429: answered instead, request not processed
    retry_after: int | None = None
    response: ResponseFault | None = None
    rule_ids: list[int] = field(default_factory=list)

    @property
    def drop(self) -> bool:
        return self.response is not None and self.response.kind == FaultKind.DROP


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
        kind = _kind_of(body)
        allowed = {"kind"} | _FIELDS.get(kind, set())
        for key in body:
            if key not in allowed:
                raise FaultSpecError(
                    f"{key}: not a field of a {str(kind)!r} fault (allowed: {', '.join(sorted(allowed))})"
                )
        rule = FaultRule(id=self._next_id, kind=kind)
        _read_matching(rule, body)
        _read_kind_fields(rule, body)
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
            if rule.kind in (FaultKind.ERROR, FaultKind.RATE_LIMIT) and inj.status is not None:
                continue
            if rule.kind in RESPONSE_KINDS and inj.response is not None:
                continue
            if rule.rate < 1.0 and rule._rng.random() >= rule.rate:
                continue
            rule.consume()
            inj.rule_ids.append(rule.id)
            if rule.kind == FaultKind.LATENCY:
                inj.latency_ms += rule.latency_ms
            elif rule.kind in RESPONSE_KINDS:
                inj.response = ResponseFault(
                    rule.kind, rule.keep, rule.cut_connection, rule.status, rule.body, rule.processed
                )
            else:
                inj.status = rule.status
                if rule.kind == FaultKind.RATE_LIMIT:
                    inj.retry_after = rule.retry_after
        if inj.status is not None:
            inj.response = None  # an injected error is answered as such, never cut or replaced
        return inj

    def token_max_age(self) -> float | None:
        ages = [r.seconds for r in self.rules if r.kind == FaultKind.TOKEN_EXPIRY and r.active]
        return min(ages) if ages else None

    def take_queue_delay(self) -> tuple[float, list[int]]:
        """Extra simulated seconds before a new job starts (active ``queue_delay`` rules add up).

        Each rule that contributes uses up one of its ``count``; returns (seconds, rule ids).
        """
        seconds, ids = 0.0, []
        for rule in self.rules:
            if rule.kind == FaultKind.QUEUE_DELAY and rule.active:
                rule.consume()
                seconds += rule.seconds
                ids.append(rule.id)
        return seconds, ids

    def take_operation_fault(self, kind: FaultKind, server_id: str) -> FaultRule | None:
        """The first active rule of ``kind`` (one of OPERATION_KINDS) for this server or for
        all servers, consumed; else None."""
        for rule in self.rules:
            if rule.kind != kind or not rule.active:
                continue
            if rule.server is None or rule.server == server_id:
                rule.consume()
                return rule
        return None

    def server_fault(self, server_id: str, kind: FaultKind) -> FaultRule | None:
        for rule in self.rules:
            if rule.kind == kind and rule.server == server_id and rule.active:
                return rule
        return None

    def to_list(self) -> list[dict[str, object]]:
        return [r.to_dict() for r in self.rules]


def _kind_of(body: dict) -> FaultKind:
    raw = body.get("kind")
    if isinstance(raw, str):
        try:
            return FaultKind(raw)
        except ValueError:
            pass
    raise FaultSpecError(f"kind: {raw!r} is not one of {', '.join(ALL_KINDS)}")


def _read_matching(rule: FaultRule, body: dict) -> None:
    """``route``, ``method``, ``rate`` and ``count``: which requests (or events) a rule hits."""
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


def _read_kind_fields(rule: FaultRule, body: dict) -> None:
    kind = rule.kind
    if kind == FaultKind.ERROR:
        rule.status = int(_number(body, "status", 500, 500, 599))
        if rule.status not in (500, 503):
            raise FaultSpecError("status: must be 500 or 503")
    elif kind == FaultKind.RATE_LIMIT:
        rule.status = 429
        rule.retry_after = int(_number(body, "retry_after", 1, 0, 3600))
    elif kind == FaultKind.LATENCY:
        rule.latency_ms = int(_number(body, "latency_ms", 100, 0, 120_000))
    elif kind == FaultKind.TRUNCATE:
        rule.keep = _number(body, "keep", 0.5, 0.0, 1.0)
        if rule.keep >= 1.0:
            raise FaultSpecError("keep: must be below 1 (the share of the body that is sent)")
        rule.cut_connection = _flag(body, "cut_connection", False)
    elif kind == FaultKind.GARBAGE:
        rule.status = int(_number(body, "status", 200, 200, 599))
        rule.body = _garbage_body(body)
        rule.processed = _flag(body, "processed", True)
    elif kind == FaultKind.TOKEN_EXPIRY:
        rule.seconds = int(_number(body, "seconds", 0, 0, 10**9))
    elif kind == FaultKind.QUEUE_DELAY:
        if "seconds" not in body:
            raise FaultSpecError("seconds: required (simulated seconds every new job waits in the queue)")
        rule.seconds = _number(body, "seconds", 0, 0, 10**8)
    elif kind in SERVER_KINDS:
        rule.server = _server_id(body, required=True)
    elif kind in OPERATION_KINDS:
        rule.server = _server_id(body, required=False)


def _server_id(body: dict, required: bool) -> str | None:
    server = body.get("server")
    if server is None and not required:
        return None
    if not isinstance(server, str) or not server.strip():
        raise FaultSpecError("server: the server id is required, e.g. 'va1demoweb01'")
    return server.strip().lower()


def _garbage_body(body: dict) -> GarbageBody:
    raw = body.get("body", GarbageBody.HTML.value)
    try:
        return GarbageBody(raw)
    except ValueError:
        choices = ", ".join(b.value for b in GarbageBody)
        raise FaultSpecError(f"body: {raw!r} is not one of {choices}") from None


def _flag(body: dict, key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise FaultSpecError(f"{key}: must be true or false, got {value!r}")
    return value


def _number(body: dict, key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FaultSpecError(f"{key}: must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise FaultSpecError(f"{key}: {value} is out of range ({lo}..{hi})")
    return value
