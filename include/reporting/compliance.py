"""Fleet compliance over time, rebuilt from the sealed evidence packs on every call.

Storage choice: there is no second database. The history *is* the chain of sealed packs
under ``<base>/runs/``; each call reads every sealed pack whose ``audit.json`` still matches
its manifest and recomputes everything. That is self-healing (a deleted or corrupted
derived file is simply rebuilt), can never disagree with the evidence, re-ingesting a run
is a no-op by construction, and a pack sealed late (task retry) is picked up next time.
Reading a few hundred packs of a few thousand rows each takes well under a minute; if that
ever stops being true, cache per-pack summaries keyed by manifest hash.

Outputs, overwritten on every call (they are derived, never evidence themselves)::

    <base>/compliance/compliance.json   servers, per-run trend, ignored runs, validation
    <base>/compliance/compliance.csv    one line per server
    <base>/compliance/compliance.html   the report

Policy: a server is ``compliant`` when its last successful patch (``patched`` or
``patched_no_updates``) ended at most ``policy_days`` days before ``as_of``;
``non_compliant`` otherwise, including never successfully patched. It is ``not_patchable``
when its most recent informative state is ``skipped_unsupported_os`` or ``skipped_template``
(a template is not a running machine) - reported, never counted as a failure. States that
say nothing about the OS (filtered out, not running, not active) keep the previous verdict.
Runs that started after ``as_of`` are left out, so a report "as of" a past date is faithful.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from include.patching.states import ServerState
from include.reporting.audit_document import csv_safe
from include.reporting.evidence_pack import MANIFEST, RUNS, json_bytes, read_bytes, sha256_hex, write_bytes
from include.reporting.validation import AuditValidationError, run_suite, validation_result

COMPLIANCE_DIR = "compliance"
DEFAULT_POLICY_DAYS = 35
STATUSES = ("compliant", "non_compliant", "not_patchable")
SUCCESS_STATES = frozenset({ServerState.PATCHED, ServerState.PATCHED_NO_UPDATES})
NOT_PATCHABLE_STATES = frozenset({ServerState.SKIPPED_UNSUPPORTED_OS, ServerState.SKIPPED_TEMPLATE})
#: States that prove the OS is patchable (the server was eligible for a package).
ELIGIBLE_STATES = frozenset(
    {
        ServerState.PATCHED,
        ServerState.PATCHED_NO_UPDATES,
        ServerState.FAILED,
        ServerState.TIMED_OUT,
        ServerState.NOT_ATTEMPTED,
        ServerState.PLANNED_DRY_RUN,
    }
)
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
    "last_state",
    "last_seen_run_id",
    "last_seen_at",
    "explanation",
)
_TS = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class ComplianceReport:
    """Everything the compliance DAG needs: per-server verdicts, per-run trend, ignored runs."""

    as_of: str
    policy_days: int
    servers: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    ignored: list[dict[str, str]]
    summary: dict[str, Any]
    validation: dict[str, Any] | None = None
    written: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "policy_days": self.policy_days,
            "summary": self.summary,
            "runs": self.runs,
            "ignored_runs": self.ignored,
            "servers": self.servers,
            "validation": self.validation,
        }

    def raise_if_invalid(self) -> None:
        """Raise ``AuditValidationError`` when the GX validation of the report failed."""
        if self.validation is not None and not self.validation["success"]:
            raise AuditValidationError(self.validation, what="compliance report")


def _parse(ts: Any) -> datetime | None:
    try:
        return datetime.strptime(str(ts), _TS).replace(tzinfo=UTC)
    except ValueError:
        return None


def _as_utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC).replace(microsecond=0)
    if moment.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (e.g. datetime(..., tzinfo=UTC) or pendulum)")
    return moment.astimezone(UTC)


def load_sealed_runs(base: Any, expected_run_ids: Iterable[str] = ()) -> tuple[list[dict], list[dict]]:
    """Audit documents of every sealed, intact pack, oldest first, and the runs left out.

    A folder without manifest (run failed mid-write), an ``audit.json`` that no longer
    matches its manifest, an unreadable document, or an expected run id without any pack
    lands in the second list with the reason; nothing here raises for one bad pack.
    """
    documents: list[dict] = []
    ignored: list[dict[str, str]] = []
    runs_dir = base / RUNS
    folders = sorted(runs_dir.iterdir(), key=lambda p: p.name) if runs_dir.exists() else []
    for folder in folders:
        if not (folder / MANIFEST).exists():
            ignored.append(
                {"run": folder.name, "reason": "incomplete evidence pack (no manifest): run failed midway"}
            )
            continue
        try:
            manifest = json.loads(read_bytes(folder / MANIFEST).decode("utf-8"))
            raw = read_bytes(folder / "audit.json")
            if sha256_hex(raw) != manifest["files"]["audit.json"]["sha256"]:
                ignored.append(
                    {"run": folder.name, "reason": "audit.json does not match its manifest (tampered?)"}
                )
                continue
            document = json.loads(raw.decode("utf-8"))
            if not isinstance(document.get("servers"), list) or "run_id" not in document.get("run", {}):
                raise ValueError("not an audit document")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            ignored.append({"run": folder.name, "reason": f"unreadable evidence pack ({type(exc).__name__})"})
            continue
        document["_sealed_at"] = manifest.get("created_at", "")
        documents.append(document)
    seen = {doc["run"]["run_id"] for doc in documents}
    for run_id in expected_run_ids:
        if run_id not in seen and not any(item["run"] == run_id for item in ignored):
            ignored.append({"run": run_id, "reason": "no evidence pack: the run ended before its audit step"})
    documents.sort(key=lambda doc: (str(doc["run"].get("started_at") or ""), doc["_sealed_at"]))
    return documents, ignored


class _Fleet:
    """Running per-server state while replaying runs in order."""

    def __init__(self) -> None:
        self.servers: dict[str, dict[str, Any]] = {}

    def observe(self, document: Mapping[str, Any], as_of: datetime) -> datetime | None:
        """Fold one run in; a success that ended after ``as_of`` does not count yet.

        Returns the latest success time recorded from this run.
        """
        latest: datetime | None = None
        run = document["run"]
        run_end = str(run.get("ended_at") or run.get("started_at") or "")
        for row in document["servers"]:
            entry = self.servers.setdefault(
                row["server_id"],
                {"last_success_at": None, "last_success_run_id": None, "not_patchable": False},
            )
            state = row["state"]
            entry.update(
                server_id=row["server_id"],
                server_name=row.get("server_name"),
                data_center=row.get("data_center"),
                os=row.get("os"),
                os_family=row.get("os_family"),
                last_state=state,
                last_seen_run_id=run["run_id"],
                last_seen_at=run_end,
            )
            if state in NOT_PATCHABLE_STATES:
                entry["not_patchable"] = True
            elif state in ELIGIBLE_STATES:
                entry["not_patchable"] = False
            success_at = _parse(row.get("ended_at") or run_end) if state in SUCCESS_STATES else None
            if success_at is not None and success_at <= as_of:
                entry["last_success_at"] = success_at.strftime(_TS)
                entry["last_success_run_id"] = run["run_id"]
                latest = max(latest or success_at, success_at)
        return latest

    def verdicts(self, as_of: datetime, policy_days: int) -> list[dict[str, Any]]:
        result = []
        for server_id in sorted(self.servers):
            entry = dict(self.servers[server_id])
            not_patchable = entry.pop("not_patchable")
            success = _parse(entry["last_success_at"]) if entry["last_success_at"] else None
            days = None if success is None else int((as_of - success).total_seconds() // 86400)
            if not_patchable:
                status, why = "not_patchable", f"not patchable by the service ({entry['last_state']})"
            elif days is None:
                status, why = "non_compliant", "never successfully patched"
            elif days <= policy_days:
                status, why = "compliant", f"patched {days} day(s) ago, within the {policy_days}-day policy"
            else:
                status, why = (
                    "non_compliant",
                    f"last patched {days} day(s) ago, over the {policy_days}-day policy",
                )
            entry.update(status=status, days_since_success=days, explanation=why)
            result.append({key: entry.get(key) for key in SERVER_COLUMNS})
        return result


def _counts(servers: list[Mapping[str, Any]]) -> dict[str, Any]:
    counts = {status: sum(1 for s in servers if s["status"] == status) for status in STATUSES}
    patchable = counts["compliant"] + counts["non_compliant"]
    pct = round(100.0 * counts["compliant"] / patchable, 1) if patchable else None
    return {"servers": len(servers), **counts, "compliance_pct": pct}


def build_compliance_report(
    base: Any,
    *,
    as_of: datetime | None = None,
    policy_days: int = DEFAULT_POLICY_DAYS,
    expected_run_ids: Iterable[str] = (),
    validate: bool = True,
) -> ComplianceReport:
    """Replay every sealed pack up to ``as_of`` and compute verdicts, trend and validation."""
    if isinstance(policy_days, bool) or not isinstance(policy_days, int) or policy_days < 0:
        raise ValueError(f"policy_days must be a non-negative int, got {policy_days!r}")
    moment = _as_utc(as_of)
    documents, ignored = load_sealed_runs(base, expected_run_ids)
    fleet, trend = _Fleet(), []
    for document in documents:
        run = document["run"]
        started = _parse(run.get("started_at"))
        if started is not None and started > moment:
            ignored.append({"run": run["run_id"], "reason": "started after as_of"})
            continue
        latest_success = fleet.observe(document, moment)
        run_end = _parse(run.get("ended_at")) or started or moment
        run_moment = min(moment, max(run_end, latest_success or run_end))
        by_state = {state.value: 0 for state in ServerState}
        for row in document["servers"]:
            by_state[row["state"]] = by_state.get(row["state"], 0) + 1
        trend.append(
            {
                "run_id": run["run_id"],
                "started_at": run.get("started_at"),
                "dry_run": bool(run.get("dry_run")),
                "total": len(document["servers"]),
                "by_state": by_state,
                **{f"fleet_{k}": v for k, v in _counts(fleet.verdicts(run_moment, policy_days)).items()},
            }
        )
    servers = fleet.verdicts(moment, policy_days)
    report = ComplianceReport(
        as_of=moment.strftime(_TS),
        policy_days=policy_days,
        servers=servers,
        runs=trend,
        ignored=ignored,
        summary={**_counts(servers), "runs_included": len(trend), "runs_ignored": len(ignored)},
    )
    if validate:
        report.validation = validate_compliance(
            servers, expected_servers=len(fleet.servers), policy_days=policy_days
        )
    return report


def validate_compliance(
    servers: list[Mapping[str, Any]], *, expected_servers: int, policy_days: int
) -> dict[str, Any]:
    """GX checks of the per-server verdicts: each server once, closed status set, sane days."""

    def frame(pd: Any) -> Any:
        data = pd.DataFrame(list(servers), columns=list(SERVER_COLUMNS))
        data["days_since_success"] = pd.to_numeric(data["days_since_success"], errors="coerce")
        return data

    def checks(gxe: Any, col: Any) -> list[tuple[str, str, Any]]:
        return [
            (
                "server_count_equals_fleet",
                f"one line per server ever inventoried ({expected_servers})",
                gxe.ExpectTableRowCountToEqual(value=expected_servers),
            ),
            (
                "unique_server_id",
                "every server appears exactly once",
                gxe.ExpectColumnValuesToBeUnique(column="server_id"),
            ),
            (
                "status_in_closed_set",
                f"status is one of {', '.join(STATUSES)}",
                gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
            ),
            (
                "days_since_not_negative",
                "no success lies in the future of as_of",
                gxe.ExpectColumnValuesToBeBetween(column="days_since_success", min_value=0),
            ),
            (
                "compliant_within_policy",
                f"compliant servers were patched within {policy_days} days",
                gxe.ExpectColumnValuesToBeBetween(
                    column="days_since_success",
                    min_value=0,
                    max_value=policy_days,
                    row_condition=col("status") == "compliant",
                ),
            ),
            (
                "compliant_has_success",
                "a compliant server has a recorded successful patch",
                gxe.ExpectColumnValuesToNotBeNull(
                    column="last_success_run_id",
                    row_condition=col("status") == "compliant",
                ),
            ),
        ]

    return validation_result(run_suite(frame, checks, "compliance"), "compliance")


def compliance_csv(report: ComplianceReport) -> str:
    """One RFC 4180 line per server, formula-injection guarded like ``audit.csv``."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n")
    writer.writerow(SERVER_COLUMNS)
    for server in report.servers:
        writer.writerow([csv_safe(server[key]) for key in SERVER_COLUMNS])
    return buffer.getvalue()


def write_compliance_report(base: Any, report: ComplianceReport) -> dict[str, str]:
    """Write compliance.json/.csv/.html under ``<base>/compliance/``; return their locations."""
    from include.reporting.compliance_html import render_compliance_html

    folder = base / COMPLIANCE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    outputs = {
        "compliance.json": json_bytes(report.to_json()),
        "compliance.csv": compliance_csv(report).encode("utf-8"),
        "compliance.html": render_compliance_html(report).encode("utf-8"),
    }
    for name, data in outputs.items():
        write_bytes(folder / name, data)
    report.written = {name: str(folder / name) for name in outputs}
    return report.written


def update_compliance_report(
    base: Any,
    *,
    as_of: datetime | None = None,
    policy_days: int = DEFAULT_POLICY_DAYS,
    expected_run_ids: Iterable[str] = (),
) -> ComplianceReport:
    """Build, validate and write the compliance report (what the compliance DAG calls).

    Writes even when validation failed (the red banner shows it); then call
    ``report.raise_if_invalid()``.
    """
    report = build_compliance_report(
        base, as_of=as_of, policy_days=policy_days, expected_run_ids=expected_run_ids
    )
    write_compliance_report(base, report)
    return report
