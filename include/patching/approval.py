"""The approval between a staged rollout's first stage and the rest: the decision, as recorded.

The approval task (``patchflow.operators.approval``) asks a person in Airflow's UI (the
human-in-the-loop operators of Airflow 3.1+) and returns its decision as XCom; the continuation
rollout task reads it (``decision_from_xcom``), records it in the package's ledger (``approval``)
and goes on only when approved. A rejection, a timeout or a missing answer stops the rollout
cleanly: nothing more is started, the rest end ``not_attempted`` with the decision as reason,
maintenance is released and the audit is written as always.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from include.timefmt import utc_text

APPROVE = "Approve"
REJECT = "Reject"


@dataclass(frozen=True)
class Decision:
    approved: bool
    by: str | None = None
    """Who answered (None: nobody — a timeout, or no approval asked for)."""
    at: str | None = None
    timed_out: bool = False
    asked: bool = True
    """False when the run did not ask for approval (continued at once)."""
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def halt_reason(self) -> str:
        if self.approved:
            return ""
        if self.timed_out:
            return f"rollout stopped after stage 1: no approval before the approval timed out{self._when()}"
        if self.by or self.at:
            who = self.by or "someone"
            return f"rollout stopped after stage 1: rejected by {who}{self._when()}" + (
                f" ({self.note})" if self.note else ""
            )
        return f"rollout stopped after stage 1: {self.note or 'no approval decision was recorded'}"

    def _when(self) -> str:
        return f" at {self.at}" if self.at else ""


def decision_from_xcom(raw: Any) -> Decision:
    """The approval task's XCom (``Decision.as_json()``) read back; anything else is no approval."""
    if not isinstance(raw, Mapping) or "approved" not in raw:
        return Decision(
            approved=False,
            asked=True,
            note="no approval decision was recorded (the approval task did not answer)",
        )
    return Decision(
        approved=bool(raw.get("approved")),
        by=raw.get("by"),
        at=raw.get("at"),
        timed_out=bool(raw.get("timed_out")),
        asked=bool(raw.get("asked", True)),
        note=str(raw.get("note") or ""),
    )


def from_hitl(payload: Mapping[str, Any]) -> Decision:
    """A decision from the HITL operator's result (``chosen_options``, ``responded_by_user``, …)."""
    chosen = list(payload.get("chosen_options") or [])
    user = payload.get("responded_by_user") or {}
    at = payload.get("responded_at")
    at_text = utc_text(at) if isinstance(at, datetime) else (str(at) if at else None)
    params = payload.get("params_input") or {}
    note = str(params.get("comment") or "").strip() if isinstance(params, Mapping) else ""
    return Decision(
        approved=chosen == [APPROVE],
        by=(user.get("name") or user.get("id")) if isinstance(user, Mapping) else None,
        at=at_text,
        timed_out=bool(payload.get("timedout")),
        note=note,
    )


def canary_summary(
    package_key: str, ledger: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> str:
    """Markdown for the person asked (Airflow renders it on the task's Required actions panel):
    how each server of the first stage ended, and which servers each later stage would patch."""
    servers = ledger.get("servers") or {}
    stages = ledger.get("stages") or []
    names = names or {}
    first = [sid for sid, e in servers.items() if e.get("stage") == 1]
    later = [s for s in stages if int(s.get("index", 0)) > 1]
    with_reason = any(servers[sid].get("reason") for sid in first)
    header = ["server", "state", "health", "patches installed", *(["reason"] if with_reason else [])]
    lines = [
        f"**{package_key}**: stage 1 of {len(stages)} ended and passed its gate.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for sid in first:
        e = servers[sid]
        cells = [
            names.get(sid) or sid,
            str(e.get("state") or e.get("phase")),
            str(e.get("health") or "not checked"),
            str(e.get("patches_installed") if e.get("patches_installed") is not None else "-"),
            *([str(e.get("reason") or "")] if with_reason else []),
        ]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    rest = sum(len(s.get("servers") or []) for s in later)
    lines += [
        "",
        f"**Approve** to patch the other {_count(rest, 'server')} in {_count(len(later), 'more stage')}:",
        "",
        *(f"- stage {s.get('index')}: {_names(s.get('servers') or [], names)}" for s in later),
        "",
        "**Reject** (or let the approval time out) to stop here: they are then not patched in this run.",
    ]
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _names(ids: list[str], names: Mapping[str, str], shown: int = 8) -> str:
    labels = [names.get(sid) or sid for sid in ids[:shown]]
    return ", ".join(labels) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
