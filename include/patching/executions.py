"""What the patching service's answers mean for a patch run (framework-free).

The core (``include.clc.shapes``) checks that an answer has the documented shape; this module
decides what it says about *our* request: which execution our Execute Package created, how
many attempts it made, and each patch's final verdict. These rules belong to the patch-run
domain (invariants I1 and I8), not to the API: they change when the rollout's rules change.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime
from enum import StrEnum

from include.patching.result_codes import FAILED_CODES
from include.timefmt import parse_iso8601


class ExecutionStatus(StrEnum):
    """Status values the patching service gives an execution, and each patch of it, that we act on."""

    PENDING = "pending"
    """Started, not finished: another package is refused on the server meanwhile."""
    COMPLETED = "completed"
    """Finished: the execution's (or the patch's) outcome is final."""
    FAILED = "failed"
    """A patch that did not install."""


_KB = re.compile(r"\bKB\s?(\d{6,8})\b", re.IGNORECASE)
_INSTALLED = re.compile(r"Installed\s+(\d+)\s+update", re.IGNORECASE)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def select_execution(
    executions: list[dict],
    known: Collection[str] | None,
    requested_at: datetime | None = None,
    not_before: datetime | None = None,
) -> dict | None:
    """The execution our Execute Package request created, or None while none is visible.

    Our clock is never compared with the API's here: it may be minutes or years away, and an
    execution may start long after the request (the platform works through a batch one server
    after another). One of two records made before the request (in the ledger) tells ours:

    - ``known``: the ids the server's summary listed right before the request. Ours is the
      newest execution *not* among them.
    - ``not_before``: the patching service's own time, from the ``Date`` of an answer it gave
      before the request (less a margin). An execution started after the request is dated no
      earlier on that same clock, so ours is the newest one started at or after it; the
      server's history from before is older. API times are compared with each other only.

    "Newest" orders the candidates by the API's ``start_time``, then by position in the list.

    Legacy fallback, only when both are None (a ledger written before either existed): the
    newest execution that started at/after ``requested_at``. That compares the API's clock
    with ours and is wrong under clock differences; nothing written today uses it.
    """
    if known is None and not_before is None:
        return _select_by_request_time(executions, requested_at)
    excluded = set(known or ())
    timed = [(_started(e), i, e) for i, e in enumerate(executions) if e["execution_id"] not in excluded]
    fresh = [item for item in timed if not_before is None or item[0] >= not_before]
    return max(fresh, key=lambda item: (item[0], item[1]))[2] if fresh else None


def pending_ids(executions: list[dict]) -> list[str]:
    """The ids of a summary's executions still pending."""
    return [e["execution_id"] for e in executions if e.get("status") == ExecutionStatus.PENDING]


def _started(execution: dict) -> datetime:
    return parse_iso8601(execution.get("start_time")) or _EPOCH


def _select_by_request_time(executions: list[dict], requested_at: datetime | None) -> dict | None:
    if requested_at is None:
        return None
    timed = [(parse_iso8601(e.get("start_time")), i, e) for i, e in enumerate(executions)]
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
    return row.get("status") == ExecutionStatus.FAILED or row.get("result_code") in FAILED_CODES


def patch_installed(row: dict) -> bool:
    return row.get("status") == ExecutionStatus.COMPLETED and not patch_failed(row)


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
    times = [parse_iso8601(row.get("start_time")) for _, row in attempts]
    if all(t is not None for t in times):
        return max(zip(times, attempts, strict=True), key=lambda pair: (pair[0], pair[1][0]))[1][1]
    return attempts[-1][1]
