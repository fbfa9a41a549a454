"""Which audit rows need a person's attention, and why: one rule for the reports and the run e-mail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.patching.audit_rows import MaintenanceResult
from include.patching.states import PROBLEM_STATES, ServerState

# Keyed by plain text: rows read back from JSON carry the state as a str.
_STATE_ORDER: dict[str, int] = {state: index for index, state in enumerate(ServerState)}

#: Why a row in this state needs a person, in words (the report's "why" column).
WHY: dict[str, str] = {
    ServerState.FAILED: "not patched: the package or a patch failed",
    ServerState.TIMED_OUT: "not known to be patched: no completed execution in time",
    ServerState.UNHEALTHY: "patched, but failed its health check afterwards: check the service",
    ServerState.NOT_ATTEMPTED: "not patched: the package was never sent",
    ServerState.SKIPPED_NOT_RUNNING: "stopped or paused: not patched until it runs during a patch run",
    ServerState.REVERTED: "not patched: patching failed and the server was restored to this run's snapshot",
    ServerState.REVERT_FAILED: "state unknown: patching failed and restoring this run's snapshot failed",
    ServerState.SKIPPED_NO_SNAPSHOT: "not patched: the run required a snapshot and none could be taken",
}
UNKNOWN_STATE_WHY = "a state outside the closed set: the run's record cannot be trusted for this server"
LEFT_ON_WHY = "left in maintenance mode by this run"
#: States that need attention besides the problem states: a stopped or paused server is
#: never patched, however often the run succeeds, so it must not hide among the skipped.
NEGLECTED_STATES = frozenset({ServerState.SKIPPED_NOT_RUNNING})


def left_in_maintenance(row: Mapping[str, Any]) -> bool:
    """The run may have put the server into maintenance and could not confirm it is out (I2)."""
    return row.get("maintenance") == MaintenanceResult.LEFT_ON


def state_needs_attention(state: Any) -> bool:
    """Failed, timed out, not attempted, or a state nobody knows (never hidden as a success)."""
    return state in PROBLEM_STATES or state not in _STATE_ORDER


def needs_attention(row: Mapping[str, Any]) -> bool:
    """A problem state, a stopped or paused server, or one the run left in maintenance (I2)."""
    state = row.get("state")
    return state_needs_attention(state) or state in NEGLECTED_STATES or left_in_maintenance(row)


def why_attention(row: Mapping[str, Any]) -> str:
    """Why the row is listed under "needing attention" ("" when it is not)."""
    state = row.get("state")
    reasons = []
    if state not in _STATE_ORDER:
        reasons.append(UNKNOWN_STATE_WHY)
    elif state in WHY:
        reasons.append(WHY[state])
    if left_in_maintenance(row):
        reasons.append(LEFT_ON_WHY)
    return "; ".join(reasons)


def _state_rank(state: object) -> int:
    """Position in the state order; -1 (first) for a state nobody knows."""
    return _STATE_ORDER.get(state, -1) if isinstance(state, str) else -1


def rows_needing_attention(rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows that need attention, worst first: unknown states, then in state order, by server."""
    return sorted(
        (row for row in rows if needs_attention(row)),
        key=lambda row: (_state_rank(row.get("state")), str(row.get("server_id"))),
    )
