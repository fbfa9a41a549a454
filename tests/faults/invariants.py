"""The run invariants I1-I8, judged from the simulator's own state — never from the DAG's results.

A scenario snapshots the simulator before the run, right after it and once everything it had
queued has landed (``settled``: the simulated clock pushed hours ahead). The checker compares
those snapshots with the sealed audit document and with every text the run left behind:

- I1 at most one Execute Package per server in the run (accepted executions plus requests the
  simulator refused because one was already pending);
- I2 no server left in maintenance that was not in maintenance before the run, and none taken
  out that was (unless the platform refused the release and the audit row says so);
- I3 one audit row per inventoried server, each with a state of the closed set;
- I4 every audit row agrees with the executions the simulator ran for that server in this run:
  the execution id is this run's last one, nothing executed is reported "not attempted", and
  a completed execution is not reported timed out;
- I5 no job of the run touched a server outside the selection, nothing outside changed;
- I6 no planted secret and no bearer token (JWT) in any log, artifact, report or XCom;
- I7 the run ended, in a definite state, within its bound;
- I8 each server's outcome is what the patching service finally did: every patch judged by its
  last attempt, reboots counted from the execution's real reboots.

Every violation names the invariant and the server, so a failing scenario says what broke.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from include.patching.states import ALL_STATES, ServerState


class Invariant(StrEnum):
    """The product's run invariants (README "Safety properties", docs/fault-matrix.md)."""

    I1 = "I1 exactly once"
    I2 = "I2 maintenance released"
    I3 = "I3 one audit row each"
    I4 = "I4 outcome from the execution"
    I5 = "I5 nothing outside the selection"
    I6 = "I6 no secret anywhere"
    I7 = "I7 bounded time"
    I8 = "I8 observed outcome"


@dataclass(frozen=True)
class Violation:
    invariant: Invariant
    server: str | None
    message: str

    def __str__(self) -> str:
        where = f" [{self.server}]" if self.server else ""
        return f"{self.invariant.value}{where}: {self.message}"


class Outcome(StrEnum):
    """What the patching service finally did on a server, from its execution record."""

    PATCHED = ServerState.PATCHED.value
    PATCHED_NO_UPDATES = ServerState.PATCHED_NO_UPDATES.value
    FAILED = ServerState.FAILED.value
    PENDING = "pending"


@dataclass(frozen=True)
class ExecutionTruth:
    """One execution as the simulator planned and ran it, seen at a given simulated instant."""

    execution_id: str
    completed: bool
    end_epoch: float
    patches_failed: int
    patches_installed: int
    reboots: int
    attempts: int
    """Initiations of the execution so far (the package's apply → reboot → apply loop)."""

    @property
    def outcome(self) -> Outcome:
        if not self.completed:
            return Outcome.PENDING
        if self.patches_failed:
            return Outcome.FAILED
        return Outcome.PATCHED if self.patches_installed else Outcome.PATCHED_NO_UPDATES


@dataclass(frozen=True)
class SimSnapshot:
    """The simulator at one instant: ``/_sim/state``, ``/_sim/counters`` and the execution plans
    of its state file (per-patch results and reboot windows), with the simulated clock."""

    state: Mapping[str, Any]
    counters: Mapping[str, Any]
    plans: Mapping[str, Mapping[str, Any]]
    sim_epoch: float
    wall_epoch: float
    time_scale: float

    @property
    def server_ids(self) -> list[str]:
        return sorted(self.state["servers"])

    def server(self, sid: str) -> Mapping[str, Any]:
        return self.state["servers"][sid]

    def in_maintenance(self, sid: str) -> bool:
        return bool(self.server(sid)["inMaintenanceMode"])

    def executions(self, sid: str) -> list[str]:
        return list(self.server(sid)["executions"])

    def accepted_packages(self, sid: str) -> int:
        return int(self.counters.get("executions_per_server", {}).get(sid, 0))

    def refused_duplicates(self, sid: str) -> int:
        return int(self.counters.get("duplicate_executions_rejected", {}).get(sid, 0))

    def logins(self) -> int:
        counts = self.counters.get("logins", {})
        return int(counts.get("succeeded", 0)) + int(counts.get("failed", 0))

    def sim_time_at(self, wall: datetime) -> float:
        """The simulated instant matching a wall-clock instant of ours (the clock is linear)."""
        return self.sim_epoch - (self.wall_epoch - wall.timestamp()) / self.time_scale

    def truth(self, execution_id: str) -> ExecutionTruth:
        plan = self.plans[execution_id]
        status = self.state["executions"][execution_id]["status"]
        halt = plan.get("halt_at")
        seen_until = self.sim_epoch if halt is None else min(self.sim_epoch, halt)
        last_attempt: dict[str, bool] = {}
        for initiation in plan["initiations"]:
            for patch in initiation["patches"]:
                if patch["end"] <= seen_until:
                    last_attempt[patch["begin_message"]] = bool(patch["ok"])
        reboots = sum(1 for i in plan["initiations"] if i.get("reboot") and i["reboot"][0] <= seen_until)
        attempts = sum(1 for i in plan["initiations"] if i["start"] <= seen_until)
        return ExecutionTruth(
            execution_id=execution_id,
            completed=status == "completed",
            end_epoch=float(plan["end"]),
            patches_failed=sum(1 for ok in last_attempt.values() if not ok),
            patches_installed=sum(1 for ok in last_attempt.values() if ok),
            reboots=reboots,
            attempts=attempts,
        )


@dataclass(frozen=True)
class RunRecord:
    """What one scenario run left behind, besides the simulator's state."""

    run_id: str | None
    state: str | None
    """Airflow's final run state; None when the run was killed at its bound."""
    wall_seconds: float
    bound_seconds: float
    audit: Mapping[str, Any] | None
    """The sealed audit document (``audit.json``) of this run, None if none was sealed."""
    texts: Mapping[str, str] = field(default_factory=dict)
    """Every log, artifact, report and XCom value of the run, by where it was found (I6)."""
    tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def killed(self) -> bool:
        return self.state is None

    def rows(self) -> dict[str, Mapping[str, Any]]:
        return {str(r["server_id"]).lower(): r for r in (self.audit or {}).get("servers", [])}


@dataclass(frozen=True)
class Expectations:
    """What the scenario's selection allows; everything else is fixed by the invariants."""

    alias: str
    in_scope: frozenset[str]
    """Servers the run may operate on (empty when the run must be refused before touching)."""
    inventoried: frozenset[str] | None
    """Servers that must have exactly one audit row; None: refused before the inventory."""
    secrets: tuple[str, ...]
    release_refused: frozenset[str] = frozenset()
    """Servers whose maintenance the platform may refuse to release (never back from reboot):
    left in maintenance is then allowed only if their audit row says so."""
    poll_slack_seconds: float = 6.0
    """Wall seconds a completion may precede a time-out verdict (one slow poll apart)."""


JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
LEFT_ON = re.compile(r"\b(left|still|on|not released|unreleased|stuck)\b", re.IGNORECASE)
ATTEMPTED = {s.value for s in (ServerState.PATCHED, ServerState.PATCHED_NO_UPDATES)}
NEVER_SENT = {
    ServerState.NOT_ATTEMPTED.value,
    ServerState.PLANNED_DRY_RUN.value,
    ServerState.SKIPPED_UNSUPPORTED_OS.value,
    ServerState.SKIPPED_NOT_RUNNING.value,
    ServerState.SKIPPED_NOT_ACTIVE.value,
    ServerState.SKIPPED_TEMPLATE.value,
    ServerState.SKIPPED_FILTERED.value,
}


def new_executions(before: SimSnapshot, after: SimSnapshot, sid: str) -> list[str]:
    """Executions the simulator started on ``sid`` between the two snapshots, oldest first."""
    known = set(before.executions(sid)) if sid in before.state["servers"] else set()
    return [x for x in after.executions(sid) if x not in known]


def check_exactly_once(before: SimSnapshot, after: SimSnapshot) -> list[Violation]:
    """I1: per server, Execute Package reached the service at most once in the run."""
    found = []
    for sid in after.server_ids:
        accepted = after.accepted_packages(sid) - before.accepted_packages(sid)
        refused = after.refused_duplicates(sid) - before.refused_duplicates(sid)
        started = len(new_executions(before, after, sid))
        if accepted + refused > 1 or started > 1:
            found.append(
                Violation(
                    Invariant.I1,
                    sid,
                    f"{accepted + refused} Execute Package requests reached the service in this run "
                    f"({accepted} accepted, {refused} refused by the pending-execution lock; "
                    f"{started} executions started)",
                )
            )
    return found


def declares_left_in_maintenance(row: Mapping[str, Any]) -> bool:
    """True when an audit row's maintenance column says the server was left in maintenance.

    The ``maintenance`` column when the row has one, else any column named after maintenance.
    """
    if "maintenance" in row:
        values = [row["maintenance"]]
    else:
        values = [v for k, v in row.items() if "maintenance" in k.lower()]
    return any(v is True or (isinstance(v, str) and LEFT_ON.search(v.replace("_", " "))) for v in values)


def check_maintenance(
    before: SimSnapshot, settled: SimSnapshot, run: RunRecord, expect: Expectations
) -> list[Violation]:
    """I2: after everything landed, maintenance is as it was before the run."""
    found, rows = [], run.rows()
    for sid in settled.server_ids:
        was, now = before.in_maintenance(sid), settled.in_maintenance(sid)
        if now and not was:
            row = rows.get(sid)
            if sid in expect.release_refused and row is not None and declares_left_in_maintenance(row):
                continue
            why = (
                "the platform refused the release, but the audit row does not say so"
                if sid in expect.release_refused
                else "it was not in maintenance before the run"
            )
            found.append(Violation(Invariant.I2, sid, f"left in maintenance after the run; {why}"))
        elif was and not now:
            found.append(
                Violation(Invariant.I2, sid, "was in maintenance before the run and was taken out of it")
            )
    return found


def check_audit_rows(run: RunRecord, expect: Expectations) -> list[Violation]:
    """I3: one row per inventoried server, nothing else, states from the closed set."""
    if expect.inventoried is None:
        return []
    if run.audit is None:
        return [Violation(Invariant.I3, None, "no audit document was sealed for the run")]
    found = []
    counts = Counter(str(r["server_id"]).lower() for r in run.audit.get("servers", []))
    for sid in sorted(expect.inventoried):
        if counts[sid] != 1:
            found.append(Violation(Invariant.I3, sid, f"{counts[sid]} audit rows (expected exactly 1)"))
    for sid in sorted(set(counts) - expect.inventoried):
        found.append(Violation(Invariant.I3, sid, "has an audit row but is not an inventoried server"))
    for sid, row in run.rows().items():
        if row.get("state") not in ALL_STATES:
            found.append(Violation(Invariant.I3, sid, f"state {row.get('state')!r} is not in the closed set"))
    return found


def _parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _row_against_executions(
    sid: str, row: Mapping[str, Any], executions: list[str], after: SimSnapshot, expect: Expectations
) -> list[Violation]:
    """I4/I8 for one audit row against the executions the simulator ran in this run."""
    state = row.get("state")
    if not executions:
        if state in ATTEMPTED:
            return [
                Violation(
                    Invariant.I4,
                    sid,
                    f"audit says {state} (execution {row.get('execution_id')}) but the simulator ran "
                    "no execution on it in this run",
                )
            ]
        return []
    final = after.truth(executions[-1])
    if state in NEVER_SENT:
        return [
            Violation(
                Invariant.I4,
                sid,
                f"audit says {state} but the simulator ran execution {final.execution_id} on it "
                f"({final.outcome.value})",
            )
        ]
    found = []
    reported = row.get("execution_id")
    if reported != final.execution_id and (state in ATTEMPTED or reported):
        found.append(
            Violation(
                Invariant.I4,
                sid,
                f"audit names execution {reported!r}; this run's execution is {final.execution_id}",
            )
        )
    if not final.completed:
        if state in ATTEMPTED:
            found.append(
                Violation(
                    Invariant.I4,
                    sid,
                    f"audit says {state} but execution {final.execution_id} is still pending",
                )
            )
        return found
    if state == ServerState.TIMED_OUT.value:
        found += _timed_out_after_completion(sid, row, final, after, expect)
        return found
    if state != final.outcome.value:
        found.append(
            Violation(
                Invariant.I8,
                sid,
                f"audit says {state} but execution {final.execution_id} ended {final.outcome.value} "
                f"(each patch judged by its last attempt: {final.patches_installed} installed, "
                f"{final.patches_failed} failed)",
            )
        )
    found += _evidence_counts(sid, row, final)
    return found


def _timed_out_after_completion(
    sid: str, row: Mapping[str, Any], final: ExecutionTruth, after: SimSnapshot, expect: Expectations
) -> list[Violation]:
    given_up = _parse_iso(row.get("ended_at"))
    if given_up is None:
        return [
            Violation(
                Invariant.I4,
                sid,
                f"audit says timed_out but execution {final.execution_id} completed "
                f"({final.outcome.value}) and the row has no end time",
            )
        ]
    slack = expect.poll_slack_seconds / after.time_scale
    if final.end_epoch <= after.sim_time_at(given_up) - slack:
        return [
            Violation(
                Invariant.I4,
                sid,
                f"audit says timed_out but execution {final.execution_id} had completed "
                f"({final.outcome.value}) well before the run gave up on it",
            )
        ]
    return []


def _evidence_counts(sid: str, row: Mapping[str, Any], final: ExecutionTruth) -> list[Violation]:
    """Counts the row reports must be the execution's real ones; an empty count (not reported
    by the patching service) is honest, a guessed one is not."""
    found = []
    for column, real in (("reboots", final.reboots), ("attempts", final.attempts)):
        reported = row.get(column)
        if reported is not None and int(reported) != real:
            found.append(
                Violation(
                    Invariant.I8,
                    sid,
                    f"audit reports {column} {reported}; execution {final.execution_id} really had {real}",
                )
            )
    if int(row.get("patches_failed") or 0) != final.patches_failed:
        found.append(
            Violation(
                Invariant.I8,
                sid,
                f"audit reports {row.get('patches_failed')} failed patch(es); judged by their last "
                f"attempt {final.patches_failed} failed in execution {final.execution_id}",
            )
        )
    return found


def check_outcomes(
    before: SimSnapshot, after: SimSnapshot, run: RunRecord, expect: Expectations
) -> list[Violation]:
    """I4 and I8: each row against the executions the simulator ran for it in this run."""
    if run.audit is None:
        return []
    found = []
    for sid, row in sorted(run.rows().items()):
        if sid not in after.state["servers"]:
            continue
        found += _row_against_executions(sid, row, new_executions(before, after, sid), after, expect)
    return found


def check_scope(before: SimSnapshot, settled: SimSnapshot, expect: Expectations) -> list[Violation]:
    """I5: every job of the run stayed inside the selection; nothing outside changed."""
    found = []
    new_jobs = {k: v for k, v in settled.state["jobs"].items() if k not in before.state["jobs"]}
    for job_id, job in sorted(new_jobs.items()):
        for sid in job["servers"]:
            if sid not in expect.in_scope:
                found.append(
                    Violation(
                        Invariant.I5,
                        sid,
                        f"{job['kind']} job {job_id} touched it, but it is outside the selection",
                    )
                )
    for sid in settled.server_ids:
        if sid in expect.in_scope:
            continue
        if new_executions(before, settled, sid):
            found.append(Violation(Invariant.I5, sid, "a patch execution ran on it, outside the selection"))
        for key in ("inMaintenanceMode", "powerState"):
            if before.server(sid)[key] != settled.server(sid)[key]:
                found.append(
                    Violation(
                        Invariant.I5,
                        sid,
                        f"{key} changed from {before.server(sid)[key]} to {settled.server(sid)[key]}, "
                        "outside the selection",
                    )
                )
    return found


def check_secrets(texts: Mapping[str, str], secrets: Iterable[str]) -> list[Violation]:
    """I6: no planted secret and no bearer token in anything the run left behind."""
    found = []
    for where, text in sorted(texts.items()):
        for secret in secrets:
            if secret and secret in text:
                found.append(Violation(Invariant.I6, None, f"the planted secret {secret[:6]}… is in {where}"))
        if JWT.search(text):
            found.append(Violation(Invariant.I6, None, f"a bearer token (JWT) is in {where}"))
    return found


def check_bounded(run: RunRecord) -> list[Violation]:
    """I7: the run ended in a definite state within its bound."""
    if run.killed:
        return [
            Violation(
                Invariant.I7, None, f"the run had not ended after {run.bound_seconds:.0f} s and was killed"
            )
        ]
    found = []
    if run.state not in ("success", "failed"):
        found.append(
            Violation(Invariant.I7, None, f"the run ended in state {run.state!r}, not success/failed")
        )
    if run.wall_seconds > run.bound_seconds:
        found.append(
            Violation(
                Invariant.I7,
                None,
                f"the run took {run.wall_seconds:.0f} s, over its {run.bound_seconds:.0f} s bound",
            )
        )
    return found


def check_invariants(
    before: SimSnapshot, after: SimSnapshot, settled: SimSnapshot, run: RunRecord, expect: Expectations
) -> list[Violation]:
    """Every invariant; an empty list means the scenario held."""
    return [
        *check_exactly_once(before, after),
        *check_maintenance(before, settled, run, expect),
        *check_audit_rows(run, expect),
        *check_outcomes(before, after, run, expect),
        *check_scope(before, settled, expect),
        *check_secrets(run.texts, expect.secrets),
        *check_bounded(run),
    ]


def format_violations(violations: list[Violation]) -> str:
    return "\n".join(f"  - {v}" for v in violations)
