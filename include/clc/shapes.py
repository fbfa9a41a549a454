"""Validation and parsing of CLC API v2 and patching-service answers (framework-free).

A malformed answer (wrong type, missing field) raises ``ClcResponseError`` naming the
endpoint and what is wrong, so nothing downstream has to guess. Shapes follow
``docs/clc-api-v2.md`` §2 to §9; times are ISO-8601 ``Z`` and may be ``""`` or null while pending.
What the answers *mean* for a patch run (which execution is ours, a patch's final verdict)
lives in ``include.patching.executions``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from include.clc.errors import ClcResponseError
from include.timefmt import parse_iso8601


class QueueStatus(StrEnum):
    """States of a queue job (``GET operations/{alias}/status/{id}``, §6.2)."""

    NOT_STARTED = "notStarted"
    EXECUTING = "executing"
    RESUMED = "resumed"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    """The platform lost track of the job: every SDK treats it as failure."""


QUEUE_RUNNING = frozenset(
    {
        QueueStatus.NOT_STARTED,
        QueueStatus.EXECUTING,
        QueueStatus.RESUMED,
        QueueStatus.QUEUED,
        QueueStatus.RUNNING,
    }
)
QUEUE_SUCCEEDED = QueueStatus.SUCCEEDED
QUEUE_FAILED = frozenset({QueueStatus.FAILED, QueueStatus.UNKNOWN})


def expect(data: Any, kind: type | tuple[type, ...], endpoint: str, what: str = "body") -> Any:
    if not isinstance(data, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ClcResponseError(endpoint, f"{what} should be {names}, got {type(data).__name__}")
    return data


def field(obj: dict, name: str, kind: type | tuple[type, ...], endpoint: str, where: str = "") -> Any:
    """``obj[name]`` checked for presence and type."""
    label = f"{where}.{name}" if where else name
    if name not in obj:
        raise ClcResponseError(endpoint, f"missing field {label!r}")
    return expect(obj[name], kind, endpoint, label)


def read_body(raw: bytes, status: int, endpoint: str) -> Any:
    """The decoded JSON body; None when empty, or when an error answer is not JSON."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        if status >= 400:
            return None
        raise ClcResponseError(endpoint, "body is not JSON") from None


#: How much of the API's error text an error keeps — cut only after secrets were masked, so a
#: token the API echoes back is never cut in two and left half-recognisable.
API_MESSAGE_LIMIT = 300


def api_message(body: Any) -> str:
    """The API's own error text (``message``, ``modelState`` or batch ``errorMessage``s), whole."""
    text = ""
    if isinstance(body, dict):
        parts = [str(body["message"])] if body.get("message") else []
        state = body.get("modelState")
        if isinstance(state, dict):
            for key, value in state.items():
                parts.append(f"{key}: {'; '.join(map(str, value)) if isinstance(value, list) else value}")
        text = " ".join(parts)
    elif isinstance(body, list):
        text = "; ".join(
            f"{i.get('server', '?')}: {i['errorMessage']}"
            for i in body
            if isinstance(i, dict) and i.get("errorMessage")
        )
    return text


@dataclass(frozen=True)
class Login:
    """The answer to ``POST authentication/login`` (§2)."""

    token: str
    alias: str | None
    """The account alias the API returned, if any."""


def parse_login(data: Any, endpoint: str) -> Login:
    body = expect(data, dict, endpoint)
    token = field(body, "bearerToken", str, endpoint)
    if not token:
        raise ClcResponseError(endpoint, "field 'bearerToken' is empty")
    alias = body.get("accountAlias")
    return Login(token, alias if isinstance(alias, str) and alias else None)


def parse_datacenters(data: Any, endpoint: str) -> list[dict]:
    items = expect(data, list, endpoint)
    for i, dc in enumerate(items):
        field(expect(dc, dict, endpoint, f"[{i}]"), "id", str, endpoint, f"[{i}]")
    return items


def parse_datacenter(data: Any, endpoint: str) -> dict:
    body = expect(data, dict, endpoint)
    field(body, "id", str, endpoint)
    return body


def root_group_id(dc: Any, endpoint: str) -> str:
    """The id of the data center's root ("<DC> Hardware") group from its ``group`` link."""
    body = expect(dc, dict, endpoint)
    links = field(body, "links", list, endpoint)
    for link in links:
        if isinstance(link, dict) and link.get("rel") == "group" and isinstance(link.get("id"), str):
            return link["id"]
    raise ClcResponseError(endpoint, "no 'group' link (was groupLinks=true sent?)")


def parse_group(data: Any, endpoint: str, where: str = "") -> dict:
    body = expect(data, dict, endpoint, where or "body")
    field(body, "id", str, endpoint, where)
    field(body, "name", str, endpoint, where)
    for i, child in enumerate(expect(body.get("groups", []), list, endpoint, f"{where}.groups")):
        parse_group(child, endpoint, f"{where}.groups[{i}]")
    for i, server in enumerate(expect(body.get("servers", []), list, endpoint, f"{where}.servers")):
        field(
            expect(server, dict, endpoint, f"{where}.servers[{i}]"),
            "id",
            str,
            endpoint,
            f"{where}.servers[{i}]",
        )
    return body


def parse_server(data: Any, endpoint: str) -> dict:
    body = expect(data, dict, endpoint)
    field(body, "id", str, endpoint)
    if "details" in body:
        expect(body["details"], dict, endpoint, "details")
    return body


def in_maintenance(server: dict) -> bool:
    details = server.get("details") or {}
    value = details.get("inMaintenanceMode", False)
    return value is True or (isinstance(value, str) and value.lower() == "true")


@dataclass(frozen=True)
class BatchItem:
    """One element of a batch operation's answer (§6.1)."""

    server: str
    queued: bool
    job_id: str | None
    error: str | None


def parse_batch(data: Any, endpoint: str) -> list[BatchItem]:
    items = expect(data, list, endpoint)
    out: list[BatchItem] = []
    for i, item in enumerate(items):
        where = f"[{i}]"
        expect(item, dict, endpoint, where)
        server = field(item, "server", str, endpoint, where)
        queued = field(item, "isQueued", bool, endpoint, where)
        job_id = None
        if queued:
            links = field(item, "links", list, endpoint, where)
            for link in links:
                if isinstance(link, dict) and link.get("rel") == "status":
                    job_id = link.get("id") or str(link.get("href", "")).rsplit("/", 1)[-1] or None
            if not job_id:
                raise ClcResponseError(endpoint, f"{where} is queued but has no 'status' link")
        error = item.get("errorMessage")
        out.append(BatchItem(server.lower(), queued, job_id, error if isinstance(error, str) else None))
    return out


def parse_status_link(data: Any, endpoint: str) -> str:
    """The job id of a single ``{"rel": "status", "href": …, "id": …}`` answer (§10.2-10.3)."""
    link = expect(data, dict, endpoint)
    job_id = link.get("id") or str(link.get("href") or "").rsplit("/", 1)[-1]
    if not isinstance(job_id, str) or not job_id:
        raise ClcResponseError(endpoint, "the answer names no status job")
    return job_id


def parse_queue_status(data: Any, endpoint: str) -> QueueStatus:
    status = field(expect(data, dict, endpoint), "status", str, endpoint)
    try:
        return QueueStatus(status)
    except ValueError:
        raise ClcResponseError(endpoint, f"unknown queue status {status!r}") from None


def parse_summary(data: Any, endpoint: str) -> list[dict]:
    """The server's execution history; each entry validated (§9.2). An empty answer is no history."""
    items = expect(data or [], list, endpoint)
    for i, ex in enumerate(items):
        where = f"[{i}]"
        expect(ex, dict, endpoint, where)
        field(ex, "execution_id", str, endpoint, where)
        field(ex, "status", str, endpoint, where)
        if parse_iso8601(field(ex, "start_time", str, endpoint, where)) is None:
            raise ClcResponseError(endpoint, f"{where}.start_time {ex['start_time']!r} is not a time")
        expect(ex.get("init_messages", []), list, endpoint, f"{where}.init_messages")
    return items


def parse_detail(data: Any, endpoint: str) -> dict:
    body = expect(data, dict, endpoint)
    field(body, "execution_id", str, endpoint)
    field(body, "status", str, endpoint)
    for i, patch in enumerate(expect(body.get("patches") or [], list, endpoint, "patches")):
        expect(patch, dict, endpoint, f"patches[{i}]")
    return body
