"""May a ring start? Only if the ring it requires came through this patch cycle clean (framework-free).

The evidence is the required ring's sealed audit documents (verified packs only, I10): the
latest non-dry run of ``patch_ring_<required>`` whose settings carry the same ``patch_cycle``.
"Clean" means it ended without a ``failed`` or ``timed_out`` server. No such run, a dry run
only, or failures: the gate stays closed and says exactly why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from include.patching.states import ERROR_STATES

#: What closes the gate: the states counted against the error budget (failed, timed out,
#: unhealthy after patching, reverted, revert failed): each is a patch that went wrong.
FAILED_STATES = frozenset(state.value for state in ERROR_STATES)
MAX_NAMED = 10


@dataclass(frozen=True)
class GateVerdict:
    open: bool
    reason: str
    evidence_run_id: str | None = None


def ring_dag_id(ring: str) -> str:
    return f"patch_ring_{ring}"


def gate_verdict(
    documents: Iterable[Mapping[str, Any]], *, ring: str, requires: str, cycle: str
) -> GateVerdict:
    """The verdict from the audit documents (any order; the latest matching run decides)."""
    wanted = ring_dag_id(requires)
    runs = [
        d
        for d in documents
        if d.get("run", {}).get("dag_id") == wanted
        and (d["run"].get("params") or {}).get("patch_cycle") == cycle
        and not d["run"].get("dry_run")
    ]
    if not runs:
        return GateVerdict(
            False,
            f"ring {ring} not started: it requires ring {requires}, which has no completed (audited, "
            f"non-dry) run in patch cycle {cycle}",
        )
    latest = max(
        runs, key=lambda d: (str(d["run"].get("ended_at") or ""), str(d["run"].get("started_at") or ""))
    )
    run_id = str(latest["run"].get("run_id"))
    failed = [r for r in latest.get("servers") or [] if r.get("state") in FAILED_STATES]
    if failed:
        named = ", ".join(f"{r['server_id']} ({r['state']})" for r in failed[:MAX_NAMED])
        more = f" and {len(failed) - MAX_NAMED} more" if len(failed) > MAX_NAMED else ""
        return GateVerdict(
            False,
            f"ring {ring} not started: ring {requires}'s run {run_id} of patch cycle {cycle} ended with "
            f"{len(failed)} failed server(s): {named}{more}",
            run_id,
        )
    return GateVerdict(
        True, f"ring {requires}'s run {run_id} of patch cycle {cycle} ended without failed servers", run_id
    )
