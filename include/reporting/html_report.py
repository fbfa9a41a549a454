"""The self-contained HTML audit report of one run.

No JavaScript, no external URL of any kind: inline CSS and inline SVG only, and a
Content-Security-Policy that forbids scripts, so the file can be archived, e-mailed and
opened offline years later. :func:`build_run_report` decides what the page shows (which rows
need attention, in which order, which numbers); ``templates/run_report.html.j2`` displays it
with autoescape on, so every value that came from the API (descriptions, names, reasons,
patch names) is text, never markup.

Numbers an auditor (or a test) may want to read back carry ``data-metric`` /
``data-state-count`` / ``data-server-id`` attributes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from include.patching.audit_rows import MaintenanceResult
from include.patching.result_codes import LEGEND, CodeMeaning, explain
from include.patching.stage_report import StageLine, report_lines
from include.patching.states import SKIPPED_STATES, ServerState
from include.patching.window import window_lines
from include.reporting.attention import left_in_maintenance, rows_needing_attention, why_attention
from include.reporting.page_parts import (
    REPORT_TEMPLATES,
    Badge,
    Card,
    CheckLine,
    Metric,
    ValidationBanner,
    reported_count,
    state_badge,
    state_series,
    validation_banner,
    validation_checks,
)
from include.reporting.svg_charts import BarChart, stacked_bar_layout


@dataclass(frozen=True)
class PatchLine:
    """One patch of a server: ``kb`` only when the name does not already carry it, ``result_code``
    only when there is one (``code_meaning`` says it in words, when it is a known code),
    ``attempts`` only when there was more than one."""

    name: str
    status: Any
    kb: Any = None
    result_code: Any = None
    attempts: int | None = None
    code_meaning: CodeMeaning | None = None


def patch_line(patch: Mapping[str, Any]) -> PatchLine:
    name, kb = str(patch.get("name") or ""), patch.get("kb")
    code = patch.get("result_code")
    attempts = int(patch.get("attempts") or 1)
    return PatchLine(
        name=name,
        status=patch.get("status"),
        kb=kb if kb and str(kb) not in name else None,  # Windows titles carry it
        result_code=None if code in (None, "") else code,
        attempts=attempts if attempts > 1 else None,
        code_meaning=explain(code),
    )


@dataclass(frozen=True)
class ServerLine:
    """One audit row as the tables show it; the row's own fields are shown as they are."""

    row: Mapping[str, Any]
    badge: Badge
    patches_installed: int
    patches_failed: int
    reboots: Metric
    patches: tuple[PatchLine, ...]
    patches_not_completed: tuple[PatchLine, ...]
    left_in_maintenance: bool
    why_attention: str
    snapshot: str = ""
    """The snapshot evidence in words ("" when the run took none and tried none)."""


def snapshot_text(row: Mapping[str, Any]) -> str:
    """``snapshot 2026-12-01.10:00:01 of this run: restored, kept`` / ``no snapshot of this run: …``."""
    status = row.get("snapshot")
    if not status:
        return ""
    if status != "confirmed":
        note = row.get("snapshot_note") or status
        return (
            "no snapshot of this run"
            if note in str(row.get("reason") or "")
            else f"no snapshot of this run: {note}"
        )
    done = ["restored"] if row.get("snapshot_restored") else []
    if row.get("snapshot_fate"):
        done.append(str(row["snapshot_fate"]).replace("_", " "))
    text = f"snapshot {row.get('snapshot_name')} of this run" + (f": {', '.join(done)}" if done else "")
    note = row.get("snapshot_note")
    return f"{text} ({note})" if note else text


def server_line(row: Mapping[str, Any]) -> ServerLine:
    patches = row["patches"]
    return ServerLine(
        row=row,
        badge=state_badge(row["state"]),
        patches_installed=int(row["patches_installed"]),
        patches_failed=int(row["patches_failed"]),
        reboots=reported_count(row.get("reboots")),
        patches=tuple(patch_line(patch) for patch in patches),
        patches_not_completed=tuple(patch_line(p) for p in patches if p.get("status") != "completed"),
        left_in_maintenance=left_in_maintenance(row),
        why_attention=why_attention(row),
        snapshot=snapshot_text(row),
    )


@dataclass(frozen=True)
class StateCount:
    """One row of the servers-by-state table."""

    badge: Badge
    count: int


@dataclass(frozen=True)
class Chart:
    """One chart of the page with its caption."""

    layout: BarChart
    caption: str


@dataclass(frozen=True)
class CodeLegendLine:
    """One result code of the legend, with how many patches of this run ended with it."""

    meaning: CodeMeaning
    patches: int


def code_legend(servers: list[Mapping[str, Any]]) -> list[CodeLegendLine]:
    """Every known result code with its count in this run (codes are explained even at 0)."""
    seen = [explain(p.get("result_code")) for row in servers for p in row.get("patches") or []]
    return [CodeLegendLine(m, sum(1 for s in seen if s is m)) for m in LEGEND]


@dataclass(frozen=True)
class RunReport:
    """Everything the run report shows, decided here so tests can read it without HTML."""

    run: Mapping[str, Any]
    validation: ValidationBanner
    checks: list[CheckLine] | None
    cards: list[Card]
    states: list[StateCount]
    charts: list[Chart]
    problems: list[ServerLine]
    servers: list[ServerLine]
    metadata: list[tuple[str, Any]]
    params_json: str
    software: list[tuple[str, Any]]
    audit_sha256: str | None
    code_legend: list[CodeLegendLine]
    stages: list[StageLine] = field(default_factory=list)
    """Staged rollouts: one line per package and stage (``include.patching.stage_report``)."""
    stage_notes: list[str] = field(default_factory=list)


def summary_cards(summary: Mapping[str, Any], *, dry_run: bool = False) -> list[Card]:
    """The summary's numbers; a dry run (or any planned server) also gets a "Planned" card."""
    by_state = summary["by_state"]
    skipped = sum(by_state.get(s, 0) for s in SKIPPED_STATES)
    left_on = summary.get("by_maintenance", {}).get(MaintenanceResult.LEFT_ON, 0)
    counts = [
        ("total", "Servers inventoried", summary["total"]),
        ("attempted", "Patching attempted", summary["attempted"]),
        ("patched", "Patched", by_state.get(ServerState.PATCHED, 0)),
        ("patched_no_updates", "Up to date", by_state.get(ServerState.PATCHED_NO_UPDATES, 0)),
        ("failed", "Failed", by_state.get(ServerState.FAILED, 0)),
        ("timed_out", "Timed out", by_state.get(ServerState.TIMED_OUT, 0)),
        ("unhealthy", "Unhealthy after patching", by_state.get(ServerState.UNHEALTHY, 0)),
        ("not_attempted", "Not attempted", by_state.get(ServerState.NOT_ATTEMPTED, 0)),
        ("reverted", "Reverted to snapshot", by_state.get(ServerState.REVERTED, 0)),
        ("revert_failed", "Revert failed", by_state.get(ServerState.REVERT_FAILED, 0)),
        ("skipped_no_snapshot", "Not patched: no snapshot", by_state.get(ServerState.SKIPPED_NO_SNAPSHOT, 0)),
        ("skipped", "Skipped (with reason)", skipped),
        ("left_in_maintenance", "Left in maintenance by this run", left_on),
        ("patches_installed", "Patches installed", summary["patches_installed"]),
        ("patches_failed", "Patches failed", summary["patches_failed"]),
        ("reboots", "Reboots", summary["reboots"]),
    ]
    planned = by_state.get(ServerState.PLANNED_DRY_RUN, 0)
    if dry_run or planned:
        counts.insert(1, ("planned_dry_run", "Planned (dry run): would be patched", planned))
    return [Card(key, label, reported_count(count)) for key, label, count in counts]


def _charts(summary: Mapping[str, Any]) -> list[Chart]:
    series = state_series()
    return [
        Chart(
            stacked_bar_layout(
                "chart-os", "Servers per OS family, by state", summary["by_os_family"], series
            ),
            "Per OS family",
        ),
        Chart(
            stacked_bar_layout(
                "chart-dc", "Servers per data center, by state", summary["by_data_center"], series
            ),
            "Per data center",
        ),
    ]


def _metadata(run: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("DAG", run.get("dag_id")),
        ("Run id", run.get("run_id")),
        ("Run type", run.get("run_type")),
        ("Triggered by", run.get("triggered_by") or "scheduler / system"),
        ("Account alias", run.get("account_alias")),
        ("Started", run.get("started_at")),
        ("Ended", run.get("ended_at")),
        ("Dry run", "yes" if run.get("dry_run") else "no"),
        *window_lines(run.get("window")),  # maintenance window: who was not started, who overran
    ]


def build_run_report(
    document: Mapping[str, Any],
    validation: Mapping[str, Any] | None,
    *,
    audit_sha256: str | None = None,
) -> RunReport:
    """What the report of one run's audit document and its validation verdict shows."""
    run, summary, servers = document["run"], document["summary"], document["servers"]
    stage_lines, stage_notes = report_lines(run.get("stages"))
    return RunReport(
        run=run,
        validation=validation_banner(validation),
        checks=validation_checks(validation),
        cards=summary_cards(summary, dry_run=bool(run.get("dry_run"))),
        states=[StateCount(state_badge(state), int(count)) for state, count in summary["by_state"].items()],
        charts=_charts(summary),
        problems=[server_line(row) for row in rows_needing_attention(servers)],
        servers=[server_line(row) for row in servers],
        metadata=_metadata(run),
        params_json=json.dumps(run.get("params"), indent=2, sort_keys=True, default=str),
        software=sorted((run.get("software") or {}).items()),
        audit_sha256=audit_sha256,
        code_legend=code_legend(servers),
        stages=stage_lines,
        stage_notes=stage_notes,
    )


def render_report_html(
    document: Mapping[str, Any],
    validation: Mapping[str, Any] | None,
    *,
    audit_sha256: str | None = None,
) -> str:
    """The complete report page for one run's audit document and its validation verdict."""
    report = build_run_report(document, validation, audit_sha256=audit_sha256)
    return REPORT_TEMPLATES.render("run_report.html.j2", report=report)
