"""What a run's stages were and how their gates went, for the audit, the report and the board.

Built from the plan (``stages``: the preview classify writes, the only source in a dry run) and
each package's rollout ledger (its recorded plan, the servers' states and health verdicts, the
``halt`` and the ``approval``). Plain JSON out: it goes into the audit document's run metadata
(``run.stages``), sealed with the evidence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from include.patching.rollout_state import Phase
from include.patching.states import ERROR_STATES, ServerState


def preview(rows: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> dict[str, list[dict]]:
    """The stage plan each package would get (the rollout computes the same from the same rows)."""
    from include.patching.stages import ledger_fields, normalise_waves

    waves = normalise_waves(settings.get("waves"))
    if not waves:
        return {}
    by_package: dict[str, list[str]] = {}
    for row in rows:
        if row.get("package_key") and (
            not row.get("state") or row.get("state") == ServerState.PLANNED_DRY_RUN
        ):
            by_package.setdefault(str(row["package_key"]), []).append(str(row["id"]))
    out = {}
    for key, ids in by_package.items():
        header, _, _ = ledger_fields(rows, ids, waves, settings.get("cluster_by"))
        out[key] = header.get("stages") or []
    return out


def _gate(
    index: int,
    states: list[str | None],
    halt: Mapping[str, Any] | None,
    planned_only: bool,
    started: bool = True,
) -> str:
    if planned_only:
        return "planned"
    if halt and halt.get("stage") == index and halt.get("kind", "gate") == "gate":
        return "failed"
    if halt and (halt.get("stage") or 0) <= index and halt.get("kind") == "decision":
        return "stopped"
    if halt and (halt.get("stage") or 0) < index:
        return "not reached"
    if any(s is None for s in states):
        return "running" if started else "waiting"
    if all(s == ServerState.NOT_ATTEMPTED for s in states):
        return "not reached"
    return "passed"


def _turned_unhealthy(entry: Mapping[str, Any] | None) -> bool:
    """Ended unhealthy, or was reverted (or tried to be) after it turned unhealthy."""
    entry = entry or {}
    return ServerState.UNHEALTHY in (entry.get("state"), entry.get("failed_state"))


def summarize(
    plan: Mapping[str, Any], ledgers: Mapping[str, Mapping[str, Any] | None]
) -> dict[str, dict[str, Any]]:
    """Per package with stages: each stage's servers, counts and gate; the halt and the approval."""
    previews = plan.get("stages") or {}
    out: dict[str, dict[str, Any]] = {}
    for key in dict.fromkeys([*previews, *(k for k, v in ledgers.items() if v and v.get("stages"))]):
        ledger = ledgers.get(key) or {}
        stages = ledger.get("stages") or previews.get(key) or []
        servers = ledger.get("servers") or {}
        halt = ledger.get("halt")
        planned_only = not ledger.get("stages")
        lines = []
        for stage in stages:
            ids = list(stage.get("servers") or [])
            states = [(servers.get(sid) or {}).get("state") for sid in ids]
            phases = [(servers.get(sid) or {}).get("phase") for sid in ids]
            progress = [
                state or ("waiting" if phase in (None, Phase.QUEUED) else "in flight")
                for state, phase in zip(states, phases, strict=True)
            ]
            started = any(p not in (None, Phase.QUEUED) for p in phases)
            lines.append(
                {
                    "index": stage.get("index"),
                    "spec": stage.get("spec"),
                    "note": stage.get("note") or "",
                    "servers": ids,
                    "counts": dict(Counter(progress)) if not planned_only else {},
                    "unhealthy": [sid for sid in ids if _turned_unhealthy(servers.get(sid))],
                    "errors": sum(1 for s in states if s in ERROR_STATES),
                    "gate": _gate(int(stage.get("index") or 0), states, halt, planned_only, started),
                }
            )
        out[key] = {"stages": lines, "halt": halt, "approval": ledger.get("approval")}
    return out


@dataclass(frozen=True)
class StageLine:
    package: str
    index: int
    spec: str
    size: int
    gate: str
    counts: str
    detail: str
    servers: list[str] = field(default_factory=list)


def report_lines(stages: Mapping[str, Any] | None) -> tuple[list[StageLine], list[str]]:
    """Rows of the report's stage table and one sentence per halt or approval."""
    lines, notes = [], []
    for package, info in (stages or {}).items():
        for stage in info.get("stages") or []:
            counts = ", ".join(f"{n} {state}" for state, n in sorted((stage.get("counts") or {}).items()))
            detail = stage.get("note") or ""
            if stage.get("unhealthy"):
                detail = f"unhealthy: {', '.join(stage['unhealthy'])}" + (f"; {detail}" if detail else "")
            lines.append(
                StageLine(
                    package,
                    int(stage.get("index") or 0),
                    str(stage.get("spec") or ""),
                    len(stage.get("servers") or []),
                    str(stage.get("gate") or ""),
                    counts,
                    detail,
                    list(stage.get("servers") or []),
                )
            )
        halt, approval = info.get("halt"), info.get("approval")
        if approval and approval.get("asked", True):
            verdict = "approved" if approval.get("approved") else "not approved"
            who = approval.get("by") or ("nobody (timed out)" if approval.get("timed_out") else "nobody")
            note = f" — {approval['note']}" if approval.get("note") else ""
            when = approval.get("at") or "an unknown time"
            notes.append(f"{package}: the rest was {verdict} by {who} at {when}{note}")
        if halt:
            notes.append(f"{package}: {halt.get('reason')}")
    return lines, notes
