"""Compliance per patch ring, beside the fleet-wide report (``<base>/compliance/rings/<ring>/``).

A ring's servers are the ones its latest audited, non-dry run had in scope (every row but
``skipped_filtered``); their verdicts come from *every* verified run, so a ring server patched
by a manual ``patch_fleet`` run counts as patched. Same files, same policy, same validation as
the fleet report, restricted to those servers (``build_compliance_report(ring=...)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from include.patching.states import ServerState

RINGS_FOLDER = "rings"


def ring_of(document: Mapping[str, Any]) -> str | None:
    """The ring a sealed run belongs to (recorded in its settings), or None (patch_fleet)."""
    return (document.get("run", {}).get("params") or {}).get("ring")


def ring_members(documents: Iterable[Mapping[str, Any]], ring: str) -> set[str]:
    """Servers in the ring's scope at its latest audited, non-dry run (empty: it never ran)."""
    runs = [d for d in documents if ring_of(d) == ring and not d["run"].get("dry_run")]
    if not runs:
        return set()
    latest = max(runs, key=lambda d: str(d["run"].get("started_at") or ""))
    return {
        str(r["server_id"])
        for r in latest.get("servers") or []
        if r.get("state") != ServerState.SKIPPED_FILTERED.value
    }


def only(servers: Sequence[dict[str, Any]], members: set[str] | None) -> list[dict[str, Any]]:
    return list(servers) if members is None else [s for s in servers if s["server_id"] in members]


def update_ring_reports(base: Any, rings: Iterable[str], **options: Any) -> dict[str, Any]:
    """Build and write one compliance report per ring; ``options`` as for the fleet report."""
    from include.reporting.compliance import build_compliance_report, write_compliance_report

    reports = {}
    for ring in rings:
        report = build_compliance_report(base, ring=ring, **options)
        write_compliance_report(base, report, subfolder=f"{RINGS_FOLDER}/{ring}")
        reports[ring] = report
    return reports
