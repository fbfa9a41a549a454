"""Staged rollouts: which servers of a package go in which stage, and when the next may start.

A run's ``waves`` (e.g. ``["1", "5", "20%", "100%"]``) give each stage's size: a count, or a
percentage of the package's targets (rounded up). Stages are filled in order; what the list
leaves over forms one more stage, and stages left empty are dropped. No ``waves``: one stage,
which is the plain sliding window of before.

Who goes first is decided once, when the rollout's ledger is created, and recorded there
(``LedgerEntry.stage``), so a restart keeps it. The order is deterministic and spreads the
early stages: servers are taken round-robin over (data center, OS) buckets, the biggest bucket
first, so a canary of 1 is the commonest kind of server and a stage of 5 covers five kinds.
A cluster (``include.patching.clusters``) is never whole in one stage: a stage takes at most
all-but-one of a cluster's members, and a cluster that would otherwise sit entirely in the last
stage has one member moved to the stage before it (or, when that is the canary, to a stage of
its own just before the last), which the plan says.

At run time a stage may start only once every server of the stages before it has ended and
no stage has failed its gate: a stage fails when one of its servers ends ``unhealthy`` or when
the error budget is used up in it. A failed stage halts the rollout: nothing further is
started and the servers not started end ``not_attempted`` with the halt's reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_SPEC = re.compile(r"^\s*([0-9]+)\s*(%?)\s*$", re.ASCII)
MAX_STAGES = 10


def wave_problems(value: Any) -> list[str]:
    """A sentence per bad entry of the ``waves`` parameter (empty: valid)."""
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list | tuple):
        return [f"waves: expected a list of stage sizes such as ['1', '5', '20%', '100%'], got {value!r}"]
    problems = []
    for item in value:
        text = str(item) if isinstance(item, int | str) and not isinstance(item, bool) else None
        match = _SPEC.match(text) if text is not None else None
        if match is None or any(ch.isdigit() and not ch.isascii() for ch in text or ""):
            problems.append(
                f"waves: {item!r} is not a stage size (a count such as '5' or a percentage such as '20%')"
            )
            continue
        number, percent = int(match.group(1)), bool(match.group(2))
        if number < 1 or (percent and number > 100):
            problems.append(f"waves: {item!r} must be a count of at least 1 or a percentage from 1% to 100%")
    if len(value) > MAX_STAGES:
        problems.append(f"waves: at most {MAX_STAGES} stages, got {len(value)}")
    return problems


def normalise_waves(value: Any) -> list[str]:
    """The ``waves`` parameter as a list of trimmed strings (call after ``wave_problems``)."""
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    return [str(v).strip().replace(" ", "") for v in value]


def stage_sizes(waves: Sequence[str], total: int) -> list[int]:
    """Each stage's size for ``total`` targets: the remainder forms one more stage; empty ones go."""
    sizes, left = [], total
    for spec in waves:
        match = _SPEC.match(spec)
        if match is None:
            raise ValueError(f"waves: {spec!r} is not a stage size")
        number = int(match.group(1))
        want = math.ceil(total * number / 100) if match.group(2) else number
        take = min(max(want, 1), left)
        if take:
            sizes.append(take)
        left -= take
    if left:
        sizes.append(left)
    return sizes


@dataclass(frozen=True)
class Candidate:
    """One target as the planner sees it (from the plan row)."""

    server_id: str
    data_center: str = ""
    os: str = ""
    cluster: str | None = None


@dataclass
class Stage:
    index: int
    """1-based."""
    spec: str
    """The ``waves`` entry it came from, ``rest`` for the remainder, ``cluster split`` when added."""
    servers: list[str] = field(default_factory=list)
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "spec": self.spec, "servers": list(self.servers), "note": self.note}


@dataclass
class StagePlan:
    stages: list[Stage]

    def stage_of(self) -> dict[str, int]:
        return {sid: stage.index for stage in self.stages for sid in stage.servers}

    def as_json(self) -> list[dict[str, Any]]:
        return [s.as_json() for s in self.stages]

    @classmethod
    def from_json(cls, data: Iterable[Mapping[str, Any]]) -> StagePlan:
        return cls(
            [
                Stage(
                    int(s["index"]),
                    str(s.get("spec", "")),
                    list(s.get("servers") or []),
                    str(s.get("note") or ""),
                )
                for s in data
            ]
        )


def spread_order(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Round-robin over (data center, OS) buckets, biggest bucket first; ids break ties."""
    buckets: dict[tuple[str, str], list[Candidate]] = {}
    for c in sorted(candidates, key=lambda c: c.server_id):
        buckets.setdefault((c.data_center.upper(), c.os.lower()), []).append(c)
    ordered = sorted(buckets.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    queues = [list(members) for _, members in ordered]
    out: list[Candidate] = []
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return out


def plan_stages(candidates: Sequence[Candidate], waves: Sequence[str]) -> StagePlan:
    """The stage of every candidate (see the module docstring); deterministic."""
    order = spread_order(candidates)
    sizes = stage_sizes(waves, len(order))
    cluster_size: dict[str, int] = {}
    for c in order:
        if c.cluster:
            cluster_size[c.cluster] = cluster_size.get(c.cluster, 0) + 1
    specs = [*waves, "rest"]
    stages: list[Stage] = []
    left = list(order)
    for number, size in enumerate(sizes, start=1):
        last = number == len(sizes)
        stage = Stage(number, specs[number - 1] if number <= len(waves) else "rest")
        in_stage: dict[str, int] = {}
        for c in list(left):
            if len(stage.servers) >= size and not last:
                break
            cap = cluster_size.get(c.cluster or "", 0) - 1
            if not last and c.cluster and cap >= 1 and in_stage.get(c.cluster, 0) >= cap:
                continue  # never a whole cluster in one stage
            stage.servers.append(c.server_id)
            in_stage[c.cluster or ""] = in_stage.get(c.cluster or "", 0) + 1
            left.remove(c)
        stages.append(stage)
    if left:  # only when the cluster caps kept servers out of every stage: a last stage takes them
        stages.append(Stage(len(stages) + 1, "rest", [c.server_id for c in left]))
    _split_clusters(stages, order, cluster_size)
    for number, stage in enumerate(stages, start=1):
        stage.index = number
    return StagePlan([s for s in stages if s.servers])


def _split_clusters(stages: list[Stage], order: Sequence[Candidate], cluster_size: Mapping[str, int]) -> None:
    """Move one member of each cluster that sits whole in the last stage to an earlier stage."""
    if len(stages) < 2:
        return
    final = stages[-1]
    members: dict[str, list[str]] = {}
    for c in order:
        if c.cluster and cluster_size[c.cluster] >= 2 and c.server_id in final.servers:
            members.setdefault(c.cluster, []).append(c.server_id)
    whole = [(name, ids) for name, ids in members.items() if len(ids) == cluster_size[name]]
    if not whole:
        return
    if len(stages) == 2:  # the stage before the last is the canary: keep it small, add a stage
        target = Stage(len(stages), "cluster split")
        stages.insert(len(stages) - 1, target)
    else:
        target = stages[-2]
    moved = []
    for name, ids in whole:
        final.servers.remove(ids[0])
        target.servers.append(ids[0])
        moved.append(f"{ids[0]} ({name})")
    note = "one member of each cluster that would have been whole in the last stage: " + ", ".join(moved)
    target.note = f"{target.note}; {note}" if target.note else note


def current_stage(stage_and_done: Iterable[tuple[int | None, bool]]) -> int | None:
    """The lowest stage with a server not ended yet (None: every server ended, or no stages)."""
    open_stages = [stage for stage, done in stage_and_done if stage is not None and not done]
    return min(open_stages) if open_stages else None


def describe(plan: StagePlan, total: int) -> list[str]:
    """One line per stage for logs and dry-run reports: ``stage 2 (5): 5 servers: a, b, …``."""
    lines = []
    for stage in plan.stages:
        names = ", ".join(stage.servers[:8]) + (
            f", … +{len(stage.servers) - 8}" if len(stage.servers) > 8 else ""
        )
        note = f" — {stage.note}" if stage.note else ""
        lines.append(
            f"stage {stage.index} ({stage.spec}): {len(stage.servers)} of {total} server(s): {names}{note}"
        )
    return lines


class Gate:
    """The run-time rules of stages and clusters over one rollout's ledger (see module docstring).

    ``ledger`` is a ``rollout_state.Ledger``: entries carry ``stage`` and ``cluster``, the header
    ``halt`` once a stage failed. ``stop_after_stage`` pauses the rollout once that stage has
    ended (the approval step between the first stage and the rest).
    """

    def __init__(self, ledger: Any, *, max_per_cluster: int, stop_after_stage: int | None = None) -> None:
        self.ledger = ledger
        self.max_per_cluster = max(int(max_per_cluster), 1)
        self.stop_after_stage = stop_after_stage

    @property
    def staged(self) -> bool:
        return bool(self.ledger.data.get("stages"))

    def current(self) -> int | None:
        from include.patching.rollout_state import Phase

        return current_stage((e.stage, e.phase is Phase.DONE) for e in self.ledger.servers.values())

    def halt(self) -> dict[str, Any] | None:
        return self.ledger.data.get("halt")

    def halt_reason(self) -> str | None:
        halt = self.halt()
        return None if not halt else str(halt.get("reason") or "rollout halted")

    def record_halt(self, stage: int | None, reason: str, kind: str = "gate") -> None:
        """``kind``: ``gate`` (a stage failed: the task fails) or ``decision`` (a person or the
        approval's timeout stopped it between stages: a clean stop)."""
        if not self.halt():
            self.ledger.data["halt"] = {"stage": stage, "reason": reason, "kind": kind}

    def failed(self) -> bool:
        """A stage failed its gate (as opposed to a clean stop by decision)."""
        halt = self.halt()
        return halt is not None and halt.get("kind", "gate") == "gate"

    def paused(self) -> bool:
        """Every server up to ``stop_after_stage`` has ended and later ones wait (approval)."""
        current = self.current()
        return self.stop_after_stage is not None and current is not None and current > self.stop_after_stage

    def check(self, budget_exhausted: bool, errors: int, max_errors: int) -> None:
        """Record a halt when the current stage failed its gate (unhealthy server, budget gone)."""
        from include.patching.states import ServerState

        if self.halt():
            return
        entries = self.ledger.servers
        # a server reverted after it turned unhealthy still failed its stage's health gate
        unhealthy = sorted(
            sid for sid, e in entries.items() if ServerState.UNHEALTHY in (e.state, e.failed_state)
        )
        if unhealthy:
            stage = min((entries[s].stage or 1) for s in unhealthy)
            first = entries[unhealthy[0]]
            names = ", ".join(unhealthy[:3]) + (f", +{len(unhealthy) - 3}" if len(unhealthy) > 3 else "")
            self.record_halt(
                stage,
                f"rollout halted: stage {stage}{self._of()} failed its health gate: {names} unhealthy "
                f"({first.health or first.reason})",
            )
        elif budget_exhausted and self.staged:
            from include.patching.states import ERROR_STATES

            mine = [(e.stage or 1) for e in entries.values() if e.state in ERROR_STATES]
            # with the fleet-wide budget the errors may all be another package's
            stage = max(mine) if mine else (self.current() or 1)
            what = (
                "used up the error budget"
                if mine
                else "stopped: the run's other packages used up the fleet-wide error budget"
            )
            self.record_halt(
                stage,
                f"rollout halted: stage {stage}{self._of()} {what} "
                f"({errors} errors > max_errors {max_errors})",
            )

    def _of(self) -> str:
        count = len(self.ledger.data.get("stages") or [])
        return f" of {count}" if count else ""

    def admit(self, queued: list[str], in_flight: list[str], slots: int) -> list[str]:
        """The queued servers that may start now, at most ``slots``: none once halted or paused;
        only the current stage's; every cluster within ``max_per_cluster`` in flight."""
        from include.patching.clusters import admit

        if slots <= 0 or self.halt() or self.paused():
            return []
        current = self.current()
        entries = self.ledger.servers
        if current is not None:
            queued = [s for s in queued if entries[s].stage == current]
        clusters = {sid: entries[sid].cluster for sid in [*queued, *in_flight]}
        return admit(queued, clusters, in_flight, limit=self.max_per_cluster, slots=slots)

    def ahead(self, queued: list[str], in_flight: list[str], count: int) -> list[str]:
        """Servers to put into maintenance ahead of their start: the current stage's next ones."""
        return self.admit(queued, in_flight, count)


def ledger_fields(
    rows: Sequence[Mapping[str, Any]], target_ids: Sequence[str], waves: Sequence[str], cluster_by: str | None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], StagePlan | None]:
    """What a new ledger records for stages and clusters: header fields, per-server fields, the plan.

    ``rows`` are the run's plan rows (``data_center``, ``os``, ``group_id``, ``custom_fields``).
    Without ``waves`` there is no stage plan (one sliding window, as before); clusters still count.
    """
    from include.patching.clusters import cluster_key

    by_id = {str(r.get("id") or r.get("server_id") or "").lower(): r for r in rows}
    clusters = {sid: cluster_key(by_id.get(sid) or {}, cluster_by) for sid in target_ids}
    fields: dict[str, dict[str, Any]] = {sid: {"cluster": c} for sid, c in clusters.items() if c}
    if not waves or not target_ids:
        return {}, fields, None
    candidates = [
        Candidate(
            sid,
            str((by_id.get(sid) or {}).get("data_center") or ""),
            str((by_id.get(sid) or {}).get("os") or ""),
            clusters[sid],
        )
        for sid in target_ids
    ]
    plan = plan_stages(candidates, waves)
    for sid, stage in plan.stage_of().items():
        fields.setdefault(sid, {})["stage"] = stage
    return {"stages": plan.as_json()}, fields, plan
