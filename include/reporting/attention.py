"""Which audit rows need a person's attention: one rule for the reports and the run e-mail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.patching.audit_rows import MaintenanceResult
from include.patching.states import PROBLEM_STATES, ServerState

# Keyed by plain text: rows read back from JSON carry the state as a str.
_STATE_ORDER: dict[str, int] = {state: index for index, state in enumerate(ServerState)}


def left_in_maintenance(row: Mapping[str, Any]) -> bool:
    """The run may have put the server into maintenance and could not confirm it is out (I2)."""
    return row.get("maintenance") == MaintenanceResult.LEFT_ON


def state_needs_attention(state: Any) -> bool:
    """Failed, timed out, not attempted, or a state nobody knows (never hidden as a success)."""
    return state in PROBLEM_STATES or state not in _STATE_ORDER


def needs_attention(row: Mapping[str, Any]) -> bool:
    """The server's state needs attention, or the run left it in maintenance (I2)."""
    return state_needs_attention(row.get("state")) or left_in_maintenance(row)


def _state_rank(state: object) -> int:
    """Position in the state order; -1 (first) for a state nobody knows."""
    return _STATE_ORDER.get(state, -1) if isinstance(state, str) else -1


def rows_needing_attention(rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows that need attention, worst first: unknown states, then in state order, by server."""
    return sorted(
        (row for row in rows if needs_attention(row)),
        key=lambda row: (_state_rank(row.get("state")), str(row.get("server_id"))),
    )
