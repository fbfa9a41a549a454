"""Fleet compliance over time, rebuilt from the sealed evidence packs on every call.

Storage choice: there is no second database. The history *is* the chain of sealed packs
under ``<base>/runs/``; each call verifies the location with
:func:`include.reporting.verify.verify_reports` and replays only the packs that verify and
are listed in ``chain.json`` (invariant I10): a pack that fails verification, or a forged one
dropped outside the chain, is excluded and named with its reasons. Given an anchor (the
manifest hash of the ``patch_audit`` asset event that triggered the report), the newest pack
must match it; packs sealed after the anchor wait for the next report, and a mismatch is shown
prominently. That is self-healing (a deleted or corrupted
derived file is simply rebuilt), can never disagree with the evidence, re-ingesting a run
is a no-op by construction, and a pack sealed late (task retry) is picked up next time.
Reading a few hundred packs of a few thousand rows each takes well under a minute; if that
ever stops being true, cache per-pack summaries keyed by manifest hash.

Outputs, overwritten on every call (they are derived, never evidence themselves)::

    <base>/compliance/compliance.json   servers, per-run trend, excluded and ignored runs,
                                        evidence verdict and anchor, validation
    <base>/compliance/compliance.csv    one line per server
    <base>/compliance/compliance_runs.csv  one line per run/pack: included, excluded, left out
    <base>/compliance/compliance.html   the report

Policy: a server is ``compliant`` when its last successful patch (``patched`` or
``patched_no_updates``) happened at most ``policy_days`` days before ``as_of``;
``non_compliant`` otherwise, including never successfully patched. It is ``not_patchable``
when its most recent informative state is ``skipped_unsupported_os`` or ``skipped_template``
(a template is not a running machine) - reported, never counted as a failure. States that
say nothing about the OS (filtered out, not running, not active) keep the previous verdict.
Runs that started after ``as_of`` are left out, so a report "as of" a past date is faithful.

"Patched at" is patchflow's clock, never the API's (docs/compliance.md): the patching service
dates its executions on its own clock, which may run minutes (a real API) or hours (the
simulator's scaled clock) away from ours, so comparing its ``ended_at`` with ``as_of`` would turn
a fresh success into "never patched" or a wrong number of days. A success counts from the row's
``observed_at`` (when patchflow saw the completion; schema 3+), capped at the run's ``ended_at``
(the audit's sealing time, also our clock); packs without ``observed_at`` use the run's
``ended_at``, at most the run's duration late. The API's ``ended_at`` is kept next to it as
evidence (``last_success_api_ended_at``) and is never used for arithmetic.

Dry runs patch nothing: they are listed apart (``dry_runs``), never change a server's last
outcome and are not counted in ``runs_included``. The report lists every server once, in
exactly one section (:func:`listing`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from include.artifacts import write_bytes_atomic
from include.patching.states import PROBLEM_STATES, ServerState
from include.reporting.audit_document import csv_safe
from include.reporting.evidence_pack import RUNS, is_sha256, json_bytes, read_bytes, sha256_hex
from include.reporting.ring_compliance import only, ring_members
from include.reporting.validation import AuditValidationError
from include.reporting.verify import (
    AnchorStatus,
    PackVerdict,
    ProblemKind,
    VerifyResult,
    VerifyStatus,
    verify_reports,
)
from include.timefmt import parse_utc_text, utc_text

COMPLIANCE_DIR = "compliance"
DEFAULT_POLICY_DAYS = 35


class ComplianceStatus(StrEnum):
    """A server's verdict in the compliance report (column ``status``)."""

    COMPLIANT = "compliant"
    """Successfully patched within the policy's days."""
    NON_COMPLIANT = "non_compliant"
    """Never successfully patched, or last patched longer ago than the policy allows."""
    NOT_PATCHABLE = "not_patchable"
    """Its OS has no patch package (or it is a template): reported, not counted."""


STATUSES = tuple(ComplianceStatus)
SUCCESS_STATES = frozenset({ServerState.PATCHED, ServerState.PATCHED_NO_UPDATES})
NOT_PATCHABLE_STATES = frozenset({ServerState.SKIPPED_UNSUPPORTED_OS, ServerState.SKIPPED_TEMPLATE})
#: States that prove the OS is patchable (the server was eligible for a package).
#: Every problem state (failed, unhealthy, reverted, never sent, no snapshot…) means a package
#: was planned for the server; so does success.
ELIGIBLE_STATES = SUCCESS_STATES | PROBLEM_STATES
#: The order of the report's sections: the servers needing attention first.
LISTING_ORDER = (ComplianceStatus.NON_COMPLIANT, ComplianceStatus.COMPLIANT, ComplianceStatus.NOT_PATCHABLE)
SERVER_COLUMNS = (
    "server_id",
    "server_name",
    "data_center",
    "os",
    "os_family",
    "status",
    "days_since_success",
    "last_success_at",
    "last_success_run_id",
    "last_success_source",
    "last_success_api_ended_at",
    "last_state",
    "last_seen_run_id",
    "last_seen_at",
    "explanation",
)
RUN_COLUMNS = ("run_id", "pack", "status", "reason")


class RunStatus(StrEnum):
    """What the compliance report did with one run or pack folder."""

    INCLUDED = "included"
    EXCLUDED = "excluded"  # its pack failed verification, or is outside the chain / the anchor
    LEFT_OUT = "left_out"  # intact or absent, but not part of this view (as_of, crash, no pack)
    DRY_RUN = "dry_run"  # verified, but it patched nothing: listed, never counted


class SuccessSource(StrEnum):
    """Which of patchflow's own times dates a server's last success (column ``last_success_source``)."""

    OBSERVED = "observed_at"
    """When patchflow saw the completion (audit schema 3 and later)."""
    RUN_ENDED = "run_ended_at"
    """Older packs: the run's end, when its audit was sealed (at most the run's duration late)."""


DRY_RUN_REASON = "dry run: nothing was patched, so it changes no verdict and is not counted"


@dataclass(frozen=True)
class EvidenceAnchor:
    """The newest pack as announced outside the reports storage (a ``patch_audit`` event)."""

    manifest_sha256: str
    run_id: str | None = None
    source: str = "patch_audit asset event"

    def __post_init__(self) -> None:
        if not is_sha256(self.manifest_sha256):
            raise ValueError(
                f"an anchor needs a manifest SHA-256 (64 lower-case hex digits), got {self.manifest_sha256!r}"
            )


@dataclass
class EvidenceHistory:
    """The packs a report may use, and why every other pack or run was set aside."""

    documents: list[dict[str, Any]]
    excluded: list[dict[str, Any]]
    ignored: list[dict[str, str]]
    evidence: dict[str, Any]


@dataclass
class ComplianceReport:
    """Everything the compliance DAG needs: per-server verdicts, per-run trend, left-out runs."""

    as_of: str
    policy_days: int
    servers: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    ignored: list[dict[str, str]]
    summary: dict[str, Any]
    excluded: list[dict[str, Any]] = field(default_factory=list)
    dry_runs: list[dict[str, Any]] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] | None = None
    written: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "policy_days": self.policy_days,
            "summary": self.summary,
            "evidence": self.evidence,
            "excluded_packs": self.excluded,
            "runs": self.runs,
            "dry_runs": self.dry_runs,
            "ignored_runs": self.ignored,
            "servers": self.servers,
            "validation": self.validation,
        }

    @property
    def anchor_mismatch(self) -> bool:
        """True when the newest pack is not the one the asset event announced."""
        anchor = self.evidence.get("anchor") or {}
        return anchor.get("status") == AnchorStatus.NOT_FOUND

    def raise_if_invalid(self) -> None:
        """Raise ``AuditValidationError`` when the GX validation of the report failed."""
        if self.validation is not None and not self.validation["success"]:
            raise AuditValidationError(self.validation, what="compliance report")


def _as_utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC).replace(microsecond=0)
    if moment.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (e.g. datetime(..., tzinfo=UTC) or pendulum)")
    return moment.astimezone(UTC)


def _anchor_cutoff(result: VerifyResult, anchor: EvidenceAnchor | None) -> tuple[int | None, str]:
    """Chain position after which packs are not covered by the anchor, and why."""
    check = result.anchor
    if anchor is None or check is None or check.status is AnchorStatus.MATCHES:
        return None, ""
    if check.status is AnchorStatus.BEHIND:
        return check.position, (
            "sealed after the pack announced by this report's anchor; not anchored yet (the compliance "
            "report of its own asset event covers it)"
        )
    announced = next((v.position for v in result.chain_packs if v.run_id == anchor.run_id), None)
    if announced is None:
        return None, ""
    return announced - 1, (
        f"the {anchor.source} announced run {anchor.run_id} with manifest SHA-256 "
        f"{anchor.manifest_sha256[:16]}...; this pack (or one before it) no longer matches: re-sealed"
    )


def _anchor_summary(result: VerifyResult, anchor: EvidenceAnchor | None) -> dict[str, Any] | None:
    """The anchor part of the evidence verdict, with a sentence a person can act on."""
    if anchor is None or result.anchor is None:
        return None
    check = result.anchor
    messages = {
        AnchorStatus.MATCHES: "the newest pack has the manifest hash announced by the asset event",
        AnchorStatus.BEHIND: f"{check.packs_after} pack(s) were sealed after the announced one and wait for "
        "the next report",
        AnchorStatus.NOT_FOUND: "ANCHOR MISMATCH: no pack has the manifest hash announced by the asset "
        f"event; the pack of run {anchor.run_id} was removed or re-sealed after it was announced",
    }
    return {
        "expected_manifest_sha256": anchor.manifest_sha256,
        "run_id": anchor.run_id,
        "source": anchor.source,
        "status": check.status.value,
        "message": messages[check.status],
    }


def _read_verified_document(base: Any, verdict: PackVerdict) -> dict[str, Any]:
    """The audit document of a verified pack, re-checked against the verified hash."""
    raw = read_bytes(base / RUNS / verdict.pack / "audit.json")
    if sha256_hex(raw) != verdict.file_hashes.get("audit.json"):
        raise ValueError("audit.json changed while the report was being built")
    document = json.loads(raw.decode("utf-8"))
    if not isinstance(document.get("servers"), list) or "run_id" not in document.get("run", {}):
        raise ValueError("not an audit document")
    return document


def _evidence_status(result: VerifyResult) -> VerifyStatus:
    """The verify verdict, except that packs sealed after the anchor are a race, not damage."""
    if result.status is not VerifyStatus.TAMPERED:
        return result.status
    damage = [p for p in result.problems if p.kind is not ProblemKind.HEAD_MISMATCH]
    behind = result.anchor is not None and result.anchor.status is AnchorStatus.BEHIND
    return VerifyStatus.VERIFIED if behind and not damage else VerifyStatus.TAMPERED


def _excluded(verdict: PackVerdict, reasons: list[str]) -> dict[str, Any]:
    return {"run_id": verdict.run_id, "pack": verdict.pack, "reasons": reasons}


def load_verified_history(
    base: Any, expected_run_ids: Iterable[str] = (), *, anchor: EvidenceAnchor | None = None
) -> EvidenceHistory:
    """Audit documents of the packs that verify, in chain order, and every pack or run set aside.

    Nothing here raises for one bad pack: it lands in ``excluded`` with the verification
    problems that disqualify it.
    """
    result = verify_reports(base, expect_head=anchor.manifest_sha256 if anchor else None)
    cutoff, cutoff_reason = _anchor_cutoff(result, anchor)
    documents: list[dict[str, Any]] = []
    excluded: list[dict[str, Any]] = []
    for verdict in result.packs:
        if not verdict.ok:
            reasons = verdict.reasons or ["sealed pack not listed in chain.json"]
            excluded.append(_excluded(verdict, reasons))
        elif cutoff is not None and verdict.position is not None and verdict.position > cutoff:
            excluded.append(_excluded(verdict, [cutoff_reason]))
        else:
            try:
                document = _read_verified_document(base, verdict)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                excluded.append(_excluded(verdict, [f"unreadable audit document ({exc})"]))
                continue
            documents.append(document)
    ignored = [
        {"run": name, "reason": "incomplete evidence pack (no manifest): run failed midway"}
        for name in result.incomplete
    ]
    accounted = {doc["run"]["run_id"] for doc in documents} | {item["run_id"] for item in excluded}
    ignored += [
        {"run": run_id, "reason": "no evidence pack: the run ended before its audit step"}
        for run_id in dict.fromkeys(expected_run_ids)
        if run_id not in accounted
    ]
    documents.sort(key=lambda doc: str(doc["run"].get("started_at") or ""))
    evidence = {
        "status": _evidence_status(result).value,
        "refused": result.refused,
        "head": result.head,
        "packs_in_chain": result.packs_checked,
        "packs_verified": len(documents),
        "packs_excluded": len(excluded),
        "problems": [str(p) for p in result.problems if p.kind is not ProblemKind.HEAD_MISMATCH],
        "anchor": _anchor_summary(result, anchor),
    }
    return EvidenceHistory(documents, excluded, ignored, evidence)


def run_end(run: Mapping[str, Any]) -> datetime | None:
    """The run's end on patchflow's clock (when its audit was sealed), else its start."""
    return parse_utc_text(run.get("ended_at")) or parse_utc_text(run.get("started_at"))


def success_moment(row: Mapping[str, Any], ended: datetime | None) -> tuple[datetime | None, SuccessSource]:
    """When a successful row's patch happened, on patchflow's clock, and which time says so.

    ``observed_at`` is capped at the run's end: both are our clock, but written on different
    machines (triggerer, worker), and the server cannot have been patched after its audit.
    """
    observed = parse_utc_text(row.get("observed_at"))
    if observed is None:
        return ended, SuccessSource.RUN_ENDED
    return (observed if ended is None else min(observed, ended)), SuccessSource.OBSERVED


class _Fleet:
    """Running per-server state while replaying real (not dry) runs in order."""

    def __init__(self) -> None:
        self.servers: dict[str, dict[str, Any]] = {}

    def observe(self, document: Mapping[str, Any], as_of: datetime) -> None:
        """Fold one real run in; a success patchflow saw after ``as_of`` does not count yet."""
        run = document["run"]
        ended = run_end(run)
        for row in document["servers"]:
            state = row["state"]
            if state == ServerState.PLANNED_DRY_RUN:
                continue  # a plan is not an outcome (dry-run documents are never folded in)
            entry = self.servers.setdefault(
                row["server_id"],
                {
                    "last_success_at": None,
                    "last_success_run_id": None,
                    "last_success_source": None,
                    "last_success_api_ended_at": None,
                    "not_patchable": False,
                },
            )
            entry.update(
                server_id=row["server_id"],
                server_name=row.get("server_name"),
                data_center=row.get("data_center"),
                os=row.get("os"),
                os_family=row.get("os_family"),
                last_state=state,
                last_seen_run_id=run["run_id"],
                last_seen_at=utc_text(ended) if ended else None,
            )
            if state in NOT_PATCHABLE_STATES:
                entry["not_patchable"] = True
            elif state in ELIGIBLE_STATES:
                entry["not_patchable"] = False
            if state not in SUCCESS_STATES:
                continue
            success_at, source = success_moment(row, ended)
            if success_at is not None and success_at <= as_of:
                entry.update(
                    last_success_at=utc_text(success_at),
                    last_success_run_id=run["run_id"],
                    last_success_source=source.value,
                    last_success_api_ended_at=row.get("ended_at"),
                )

    def verdicts(self, as_of: datetime, policy_days: int) -> list[dict[str, Any]]:
        result = []
        for server_id in sorted(self.servers):
            entry = dict(self.servers[server_id])
            not_patchable = entry.pop("not_patchable")
            success = parse_utc_text(entry["last_success_at"]) if entry["last_success_at"] else None
            days = None if success is None else int((as_of - success).total_seconds() // 86400)
            if not_patchable:
                status, why = (
                    ComplianceStatus.NOT_PATCHABLE,
                    f"not patchable by the service ({entry['last_state']})",
                )
            elif days is None:
                status, why = ComplianceStatus.NON_COMPLIANT, "never successfully patched"
            elif days <= policy_days:
                status, why = (
                    ComplianceStatus.COMPLIANT,
                    f"patched {days} day(s) ago, within the {policy_days}-day policy",
                )
            else:
                status, why = (
                    ComplianceStatus.NON_COMPLIANT,
                    f"last patched {days} day(s) ago, over the {policy_days}-day policy",
                )
            entry.update(status=status, days_since_success=days, explanation=why)
            result.append({key: entry.get(key) for key in SERVER_COLUMNS})
        return result


def _run_line(document: Mapping[str, Any]) -> dict[str, Any]:
    """A run's line in the trend (or among the dry runs): when, how many servers, per state."""
    run = document["run"]
    by_state = {state.value: 0 for state in ServerState}
    for row in document["servers"]:
        by_state[row["state"]] = by_state.get(row["state"], 0) + 1
    return {
        "run_id": run["run_id"],
        "started_at": run.get("started_at"),
        "dry_run": bool(run.get("dry_run")),
        "total": len(document["servers"]),
        "by_state": by_state,
    }


def listing(servers: Sequence[Mapping[str, Any]]) -> list[tuple[ComplianceStatus, list[Mapping[str, Any]]]]:
    """The report's server sections, non-compliant first: each server in exactly one of them.

    The HTML page and the validation both read this, so the GX suite checks the rows as listed.
    """
    return [(status, [s for s in servers if s["status"] == status]) for status in LISTING_ORDER]


def _counts(servers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {status: sum(1 for s in servers if s["status"] == status) for status in STATUSES}
    patchable = counts["compliant"] + counts["non_compliant"]
    pct = round(100.0 * counts["compliant"] / patchable, 1) if patchable else None
    return {"servers": len(servers), **counts, "compliance_pct": pct}


def build_compliance_report(
    base: Any,
    *,
    as_of: datetime | None = None,
    policy_days: int = DEFAULT_POLICY_DAYS,
    expected_run_ids: Iterable[str] = (),
    anchor: EvidenceAnchor | None = None,
    validate: bool = True,
    ring: str | None = None,
) -> ComplianceReport:
    """Replay every verified pack up to ``as_of`` and compute verdicts, trend and validation.

    ``anchor``: the newest pack as the ``patch_audit`` asset event announced it; packs sealed
    after it are left for the next report, and a mismatch is flagged (``anchor_mismatch``).
    ``ring``: only that ring's servers (``include.reporting.ring_compliance``); every run counts.
    """
    if isinstance(policy_days, bool) or not isinstance(policy_days, int) or policy_days < 0:
        raise ValueError(f"policy_days must be a non-negative int, got {policy_days!r}")
    moment = _as_utc(as_of)
    history = load_verified_history(base, expected_run_ids, anchor=anchor)
    members = None if ring is None else ring_members(history.documents, ring)
    ignored = list(history.ignored)
    fleet, trend, dry_runs = _Fleet(), [], []
    for document in history.documents:
        run = document["run"]
        started = parse_utc_text(run.get("started_at"))
        if started is not None and started > moment:
            ignored.append({"run": run["run_id"], "reason": "started after as_of"})
            continue
        line = _run_line(document)
        if run.get("dry_run"):
            dry_runs.append(line)
            continue
        fleet.observe(document, moment)
        after_run = min(moment, run_end(run) or moment)
        counts = _counts(only(fleet.verdicts(after_run, policy_days), members))
        trend.append(line | {f"fleet_{k}": v for k, v in counts.items()})
    servers = only(fleet.verdicts(moment, policy_days), members)
    report = ComplianceReport(
        as_of=utc_text(moment),
        policy_days=policy_days,
        servers=servers,
        runs=trend,
        ignored=ignored,
        excluded=history.excluded,
        dry_runs=dry_runs,
        evidence=history.evidence,
        summary={
            **_counts(servers),
            "runs_included": len(trend),
            "dry_runs": len(dry_runs),
            "runs_ignored": len(ignored),
            "packs_excluded": len(history.excluded),
        },
    )
    if validate:
        from include.reporting.compliance_checks import validate_compliance

        report.validation = validate_compliance(
            listing(servers),
            expected_servers=len(fleet.servers) if members is None else len(servers),
            policy_days=policy_days,
            as_of=moment,
            runs=trend,
        )
    return report


def _csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """RFC 4180 text, CRLF line ends, every cell guarded by ``csv_safe`` like ``audit.csv``."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n")
    writer.writerow(list(header))
    for row in rows:
        writer.writerow([csv_safe(value) for value in row])
    return buffer.getvalue()


def compliance_csv(report: ComplianceReport) -> str:
    """One line per server, formula-injection guarded like ``audit.csv``."""
    return _csv(SERVER_COLUMNS, ([server[key] for key in SERVER_COLUMNS] for server in report.servers))


def run_lines(report: ComplianceReport) -> list[tuple[str | None, str | None, RunStatus, str]]:
    """One line per run or pack: included, excluded (failed verification), dry run or left out, and why."""
    lines: list[tuple[str | None, str | None, RunStatus, str]] = [
        (run["run_id"], None, RunStatus.INCLUDED, "") for run in report.runs
    ]
    lines += [
        (item["run_id"], item["pack"], RunStatus.EXCLUDED, "; ".join(item["reasons"]))
        for item in report.excluded
    ]
    lines += [(run["run_id"], None, RunStatus.DRY_RUN, DRY_RUN_REASON) for run in report.dry_runs]
    lines += [(item["run"], None, RunStatus.LEFT_OUT, item["reason"]) for item in report.ignored]
    return lines


def compliance_runs_csv(report: ComplianceReport) -> str:
    """``compliance_runs.csv``: which runs the report counts, which it excluded, and why."""
    return _csv(
        RUN_COLUMNS, ((run_id, pack, status.value, why) for run_id, pack, status, why in run_lines(report))
    )


def write_compliance_report(base: Any, report: ComplianceReport, *, subfolder: str = "") -> dict[str, str]:
    """Write the compliance files under ``<base>/compliance[/subfolder]`` atomically; return their paths."""
    from include.reporting.compliance_html import render_compliance_html

    folder = base / COMPLIANCE_DIR / subfolder if subfolder else base / COMPLIANCE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    outputs = {
        "compliance.json": json_bytes(report.to_json()),
        "compliance.csv": compliance_csv(report).encode("utf-8"),
        "compliance_runs.csv": compliance_runs_csv(report).encode("utf-8"),
        "compliance.html": render_compliance_html(report).encode("utf-8"),
    }
    for name, data in outputs.items():
        write_bytes_atomic(folder / name, data)
    report.written = {name: str(folder / name) for name in outputs}
    return report.written


def update_compliance_report(
    base: Any,
    *,
    as_of: datetime | None = None,
    policy_days: int = DEFAULT_POLICY_DAYS,
    expected_run_ids: Iterable[str] = (),
    anchor: EvidenceAnchor | None = None,
) -> ComplianceReport:
    """Build, validate and write the compliance report (what the compliance DAG calls).

    Writes even when validation failed or the anchor did not match (red banners show it); then
    check ``report.anchor_mismatch`` and call ``report.raise_if_invalid()``.
    """
    report = build_compliance_report(
        base, as_of=as_of, policy_days=policy_days, expected_run_ids=expected_run_ids, anchor=anchor
    )
    write_compliance_report(base, report)
    return report
