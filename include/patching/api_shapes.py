"""Validation and parsing of CLC API v2 and patching-service answers (framework-free).

A malformed answer (wrong type, missing field) raises ``ClcResponseError`` naming the
endpoint and what is wrong, so nothing downstream has to guess. Shapes follow
``docs/clc-api-v2.md`` §2 to §9; times are ISO-8601 ``Z`` and may be ``""`` or null while pending.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from include.patching.clc_errors import ClcResponseError

QUEUE_RUNNING = frozenset({"notStarted", "executing", "resumed", "queued", "running"})
QUEUE_SUCCEEDED = "succeeded"
QUEUE_FAILED = frozenset({"failed", "unknown"})
"""``unknown`` means the platform lost track of the job: every SDK treats it as failure."""

_KB = re.compile(r"\bKB\s?(\d{6,8})\b", re.IGNORECASE)
_INSTALLED = re.compile(r"Installed\s+(\d+)\s+update", re.IGNORECASE)


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


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 time as aware UTC datetime; None for ``""``/null/unparseable."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_login(data: Any, endpoint: str) -> tuple[str, str | None]:
    body = expect(data, dict, endpoint)
    token = field(body, "bearerToken", str, endpoint)
    if not token:
        raise ClcResponseError(endpoint, "field 'bearerToken' is empty")
    alias = body.get("accountAlias")
    return token, alias if isinstance(alias, str) and alias else None


def parse_datacenters(data: Any, endpoint: str) -> list[dict]:
    items = expect(data, list, endpoint)
    for i, dc in enumerate(items):
        field(expect(dc, dict, endpoint, f"[{i}]"), "id", str, endpoint, f"[{i}]")
    return items


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


def parse_queue_status(data: Any, endpoint: str) -> str:
    status = field(expect(data, dict, endpoint), "status", str, endpoint)
    if status not in QUEUE_RUNNING and status != QUEUE_SUCCEEDED and status not in QUEUE_FAILED:
        raise ClcResponseError(endpoint, f"unknown queue status {status!r}")
    return status


def parse_summary(data: Any, endpoint: str) -> list[dict]:
    """The server's execution history; each entry validated (§9.2)."""
    items = expect(data, list, endpoint)
    for i, ex in enumerate(items):
        where = f"[{i}]"
        expect(ex, dict, endpoint, where)
        field(ex, "execution_id", str, endpoint, where)
        field(ex, "status", str, endpoint, where)
        if parse_time(field(ex, "start_time", str, endpoint, where)) is None:
            raise ClcResponseError(endpoint, f"{where}.start_time {ex['start_time']!r} is not a time")
        expect(ex.get("init_messages", []), list, endpoint, f"{where}.init_messages")
    return items


def select_execution(
    executions: list[dict], known: Collection[str] | None, requested_at: datetime | None = None
) -> dict | None:
    """The execution our Execute Package request created, or None while none is visible.

    ``known`` holds the ids the server's summary listed right before the request (recorded in
    the ledger): the new execution is the newest one *not* among them. No clock is compared
    with another here: the API's clock may be minutes or years away from ours, and an
    execution may start long after the request (the platform works through a batch one server
    after another). "Newest" orders the new executions by the API's own ``start_time`` (API
    times compared with each other only), then by their position in the list.

    Legacy fallback, only when ``known`` is None (a ledger written before the snapshot
    existed): the newest execution that started at/after ``requested_at``. That compares the
    API's clock with ours and is wrong under clock differences; nothing written today uses it.
    """
    if known is None:
        return _select_by_request_time(executions, requested_at)
    excluded = set(known)
    fresh = [(i, e) for i, e in enumerate(executions) if e["execution_id"] not in excluded]
    if not fresh:
        return None
    return max(fresh, key=lambda pair: (parse_time(pair[1].get("start_time")) or _EPOCH, pair[0]))[1]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _select_by_request_time(executions: list[dict], requested_at: datetime | None) -> dict | None:
    if requested_at is None:
        return None
    timed = [(parse_time(e.get("start_time")), i, e) for i, e in enumerate(executions)]
    fresh = [(t, i, e) for t, i, e in timed if t is not None and t >= requested_at]
    return max(fresh, key=lambda item: (item[0], item[1]))[2] if fresh else None


def installed_per_initiation(execution: dict) -> list[int | None]:
    """Updates installed by each initiation, from its end message (None when unreadable)."""
    counts: list[int | None] = []
    for init in execution.get("init_messages") or []:
        match = _INSTALLED.search(str((init or {}).get("init_end_message") or ""))
        counts.append(int(match.group(1)) if match else None)
    return counts


def attempt_count(execution: dict) -> int:
    """Initiations (apply attempts) the patching service reports for an execution.

    This is what the service shows. It does not report reboots (§9): how many of these
    attempts were followed by a reboot is not observable from its answers, so patchflow
    records the attempts and leaves reboots unreported.
    """
    return len(execution.get("init_messages") or [])


def parse_detail(data: Any, endpoint: str) -> dict:
    body = expect(data, dict, endpoint)
    field(body, "execution_id", str, endpoint)
    field(body, "status", str, endpoint)
    for i, patch in enumerate(expect(body.get("patches") or [], list, endpoint, "patches")):
        expect(patch, dict, endpoint, f"patches[{i}]")
    return body


def patch_rows(detail: dict) -> list[dict]:
    """One row per attempt listed in the detail, in its order:
    ``{name, kb, result_code, status, start_time, end_time}``."""
    rows = []
    for patch in detail.get("patches") or []:
        name = str(patch.get("patch_begin_message") or "").strip()
        kb = _KB.search(name)
        code = str(patch.get("patch_end_message") or "").strip()
        rows.append(
            {
                "name": name,
                "kb": f"KB{kb.group(1)}" if kb else None,
                "result_code": int(code) if code.isdigit() else None,
                "status": patch.get("status"),
                "start_time": patch.get("start_time") or None,
                "end_time": patch.get("end_time") or None,
            }
        )
    return rows


def patch_failed(row: dict) -> bool:
    """Windows Update result codes: 4 Failed, 5 Aborted; or the row's own verdict."""
    return row.get("status") == "failed" or row.get("result_code") in (4, 5)


def patch_installed(row: dict) -> bool:
    return row.get("status") == "completed" and not patch_failed(row)


def patch_identity(row: dict) -> str:
    """What makes two detail rows attempts at the same patch: the KB (Windows), else the name
    (the package NEVRA on Linux)."""
    return row.get("kb") or row["name"]


def final_attempts(rows: list[dict]) -> list[dict]:
    """One row per patch: its last attempt, with ``attempts`` = how often it was tried.

    The package repeats initiations until nothing is left, and the detail lists a patch once
    per initiation that tried it (reference §12 #36): a patch that failed once and then
    installed is installed. "Last" is the latest ``start_time`` when every attempt of the
    patch has one, else the detail's order. Rows keep the order of each patch's first attempt.
    """
    groups: dict[str, list[tuple[int, dict]]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(patch_identity(row), []).append((index, row))
    return [{**_last_attempt(attempts), "attempts": len(attempts)} for attempts in groups.values()]


def _last_attempt(attempts: list[tuple[int, dict]]) -> dict:
    times = [parse_time(row.get("start_time")) for _, row in attempts]
    if all(t is not None for t in times):
        return max(zip(times, attempts, strict=True), key=lambda pair: (pair[0], pair[1][0]))[1][1]
    return attempts[-1][1]
