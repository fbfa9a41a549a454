"""One-line outcomes for people watching a run in Airflow: the run's note and the rollout log.

Airflow colours a run green when its tasks succeed, also when servers failed within the error
budget. These lines say what happened to the servers, while the run is still going:

- ``run_line`` — the whole run, for the DAG run's note, e.g.
  ``patchflow: 19 patched · 2 failed (va1web01, va1web02) · 10 skipped · 3 in progress``;
  built from the plan and every package's ledger (``live_states``) while rollouts run, and from
  the sealed audit rows at the end.
- ``package_progress`` — one package's rollout, logged on every resume, e.g.
  ``linux_yum: 12/40 done · 3 in flight · 2 failed (va1x: reason; …) · budget 2/4``.
- ``merge_note`` — puts the run line into a note a person may also have written in, replacing
  only patchflow's own line.

Framework-free: plain JSON shapes in, text out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from include.patching.rollout_state import IN_FLIGHT, LedgerEntry, Phase
from include.patching.states import ERROR_STATES, SKIPPED_STATES, ServerState

#: First word of patchflow's line in a run note; a person's own lines are kept.
NOTE_MARKER = "patchflow:"
#: A live state: planned for a package, not ended yet.
IN_PROGRESS = "in_progress"
#: Failed servers named in a line; more are counted (``+N``).
NAMED_UP_TO = 3
SEPARATOR = " · "

_FAILURES = tuple(ERROR_STATES)
#: (states, label, name the servers) in the order a line reads.
_GROUPS: tuple[tuple[frozenset[str], str, bool], ...] = (
    (frozenset({ServerState.PATCHED}), "patched", False),
    (frozenset({ServerState.PATCHED_NO_UPDATES}), "up to date", False),
    (frozenset({ServerState.FAILED}), "failed", True),
    (frozenset({ServerState.TIMED_OUT}), "timed out", True),
    (frozenset({ServerState.UNHEALTHY}), "unhealthy", True),
    (frozenset({ServerState.REVERTED}), "reverted", True),
    (frozenset({ServerState.REVERT_FAILED}), "revert failed", True),
    (frozenset({ServerState.NOT_ATTEMPTED}), "not attempted", False),
    (frozenset({ServerState.SKIPPED_NO_SNAPSHOT}), "not patched for want of a snapshot", True),
    (frozenset({ServerState.PLANNED_DRY_RUN}), "planned (dry run)", False),
    (frozenset(SKIPPED_STATES), "skipped", False),
    (frozenset({IN_PROGRESS}), "in progress", False),
)


def _names(ids: list[str]) -> str:
    shown = ", ".join(ids[:NAMED_UP_TO])
    return shown + (f", +{len(ids) - NAMED_UP_TO}" if len(ids) > NAMED_UP_TO else "")


def run_line(states: Iterable[tuple[str, str]]) -> str:
    """``patchflow: 19 patched · 2 failed (a, b) · 10 skipped`` from ``(server_id, state)`` pairs.

    A state outside the closed set is counted under its own name, never hidden.
    """
    by_state: dict[str, list[str]] = {}
    for server_id, state in states:
        by_state.setdefault(str(state), []).append(server_id)
    parts = []
    for members, label, named in _GROUPS:
        ids = sorted(sid for state in members for sid in by_state.pop(state, []))
        if ids:
            parts.append(f"{len(ids)} {label}" + (f" ({_names(ids)})" if named else ""))
    parts += [f"{len(ids)} {state} ({_names(sorted(ids))})" for state, ids in sorted(by_state.items())]
    return f"{NOTE_MARKER} " + (SEPARATOR.join(parts) if parts else "no servers in scope")


def live_states(
    plan: Mapping[str, Any], ledgers: Mapping[str, Mapping[str, Any] | None]
) -> list[tuple[str, str]]:
    """``(server_id, state)`` of every planned server now: its end state, else ``in_progress``.

    ``ledgers`` holds each package's ledger JSON by package key (None: not started yet).
    """
    states = []
    for row in plan.get("servers") or []:
        server_id = str(row["id"])
        state = row.get("state")
        if not state:
            raw = ((ledgers.get(row.get("package_key") or "") or {}).get("servers") or {}).get(server_id)
            # the state as written (a ``ServerState`` value); no typed entry: 10,000 of them per note
            state = (raw or {}).get("state") or IN_PROGRESS
        states.append((server_id, str(state)))
    return states


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def package_progress(
    package_key: str, entries: Mapping[str, LedgerEntry], max_errors: int, budget_errors: int | None = None
) -> str:
    """``linux_yum: 12/40 done · 3 in flight · 2 failed (va1x: reason; …) · budget 2/4``.

    ``budget_errors``: the errors counted against ``max_errors`` when the limit is fleet-wide
    (every package's, ``include.patching.fleet_budget``); the line then says "fleet budget".
    """
    done = [sid for sid, e in entries.items() if e.phase is Phase.DONE]
    in_flight = sum(1 for e in entries.values() if e.phase in IN_FLIGHT)
    failed = sorted(sid for sid, e in entries.items() if e.state in _FAILURES)
    parts = [f"{package_key}: {len(done)}/{len(entries)} done", f"{in_flight} in flight"]
    if failed:
        reasons = "; ".join(
            f"{sid}: {_short(entries[sid].reason or str(entries[sid].state))}" for sid in failed[:NAMED_UP_TO]
        )
        more = f"; +{len(failed) - NAMED_UP_TO}" if len(failed) > NAMED_UP_TO else ""
        parts.append(f"{len(failed)} failed ({reasons}{more})")
    else:
        parts.append("0 failed")
    not_attempted = sum(1 for e in entries.values() if e.state is ServerState.NOT_ATTEMPTED)
    if not_attempted:
        parts.append(f"{not_attempted} not attempted")
    if budget_errors is None:
        parts.append(f"budget {len(failed)}/{max_errors}")
    else:
        parts.append(f"fleet budget {budget_errors}/{max_errors} (all packages)")
    return SEPARATOR.join(parts)


def merge_note(existing: str | None, line: str) -> str:
    """The note with patchflow's line (first) replaced by ``line``; a person's lines stay below."""
    kept = [text for text in (existing or "").splitlines() if not text.startswith(NOTE_MARKER)]
    while kept and not kept[0].strip():
        kept.pop(0)
    return "\n".join([line, *kept])


def ended(entries: Mapping[str, LedgerEntry]) -> dict[str, str]:
    """``server_id -> state`` of every server that has ended (to tell later what ended since)."""
    return {sid: str(e.state) for sid, e in entries.items() if e.state}


def server_labels(plan: Mapping[str, Any]) -> dict[str, str]:
    """``server_id -> "NAME, description"`` from the plan, to name servers in log lines."""
    labels = {}
    for row in plan.get("servers") or []:
        name = str(row.get("name") or row["id"]).strip()
        description = str(row.get("description") or "").strip()
        labels[str(row["id"])] = f"{name}, {description}" if description else name
    return labels


def problem_lines(
    before: Mapping[str, str], entries: Mapping[str, LedgerEntry], labels: Mapping[str, str]
) -> list[str]:
    """A line per server that failed or timed out since ``before`` (id, name, reason), and one
    per reason for servers newly left ``not_attempted`` (those can be many at once)."""
    lines = []
    skipped: dict[str, list[str]] = {}
    no_snapshot: dict[str, list[str]] = {}
    for sid, e in entries.items():
        if not e.state or sid in before:
            continue
        if e.state in _FAILURES:
            label = labels.get(sid, sid.upper())
            lines.append(f"server {sid} ({label}) {e.state}: {e.reason or 'no reason recorded'}")
        elif e.state is ServerState.NOT_ATTEMPTED:
            skipped.setdefault(e.reason or "no reason recorded", []).append(sid)
        elif e.state is ServerState.SKIPPED_NO_SNAPSHOT:
            no_snapshot.setdefault(e.reason or "no reason recorded", []).append(sid)
    for reason, ids in skipped.items():
        lines.append(f"{len(ids)} server(s) not attempted ({_names(sorted(ids))}): {reason}")
    for reason, ids in no_snapshot.items():
        lines.append(
            f"{len(ids)} server(s) not patched for want of a snapshot ({_names(sorted(ids))}): {reason}"
        )
    return lines
