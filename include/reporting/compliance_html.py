"""The self-contained compliance report page (same shell and rules as the run report).

:func:`build_compliance_page` decides what the page shows; ``templates/compliance_report.html.j2``
displays it, escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from include.patching.states import ERROR_STATES, ServerState
from include.reporting.compliance import ComplianceReport, ComplianceStatus, listing
from include.reporting.page_parts import (
    REPORT_TEMPLATES,
    UNKNOWN_COLOUR,
    Badge,
    Card,
    CheckLine,
    ValidationBanner,
    shown_value,
    state_badge,
    state_series,
    validation_banner,
    validation_checks,
)
from include.reporting.svg_charts import BarChart, stacked_bar_layout
from include.timefmt import minute_text

#: Section headings of the server tables, one per status (each server is in exactly one).
SECTION_TITLES: dict[str, str] = {
    ComplianceStatus.NON_COMPLIANT: "Non-compliant servers",
    ComplianceStatus.COMPLIANT: "Compliant servers",
    ComplianceStatus.NOT_PATCHABLE: "Not patchable servers",
}
STATUS_STYLE: dict[str, tuple[str, str]] = {
    ComplianceStatus.COMPLIANT: ("Compliant", "#1a7f37"),
    ComplianceStatus.NON_COMPLIANT: ("Non-compliant", "#cf222e"),
    ComplianceStatus.NOT_PATCHABLE: ("Not patchable", "#6e7781"),
}


def status_badge(status: str) -> Badge:
    label, colour = STATUS_STYLE.get(status, (f"unknown {status}", UNKNOWN_COLOUR))
    return Badge(code=status, label=label, colour=colour, attribute="status")


@dataclass(frozen=True)
class ServerVerdict:
    """One server's compliance row as the tables show it."""

    server: Mapping[str, Any]
    status: Badge
    last_state: Badge


@dataclass(frozen=True)
class ServerSection:
    """One table of servers sharing a status; ``status`` keys its ``data-section``."""

    status: str
    title: str
    verdicts: list[ServerVerdict]


@dataclass(frozen=True)
class RunTrend:
    """One run of the trend table (or of the dry runs); ``label`` is its name in the charts."""

    run: Mapping[str, Any]
    label: str
    succeeded: int
    failed: int
    planned: int


@dataclass(frozen=True)
class AnchorNotice:
    """How the newest pack compares with its announcement (``anchor`` is ``None`` without one)."""

    anchor: Mapping[str, Any] | None
    mismatch: bool


@dataclass(frozen=True)
class CompliancePage:
    as_of: str
    policy_days: int
    validation: ValidationBanner
    checks: list[CheckLine] | None
    anchor: AnchorNotice
    excluded: Sequence[Mapping[str, Any]]
    cards: list[Card]
    sections: list[ServerSection]
    charts: list[BarChart]
    runs: list[RunTrend]
    dry_runs: list[RunTrend]
    ignored: Sequence[Mapping[str, Any]]


def _verdict(server: Mapping[str, Any]) -> ServerVerdict:
    return ServerVerdict(server, status_badge(server["status"]), state_badge(server["last_state"]))


def run_labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Short, unique chart labels: the run's start to the minute (UTC), numbered on a clash.

    Run ids (``manual__2026-12-01T04:42:48.308706+00:00``) do not fit beside a bar; the trend
    table pairs each label with its run id.
    """
    labels: list[str] = []
    for run in runs:
        base = minute_text(run.get("started_at")) or str(run["run_id"])
        label, n = base, 1
        while label in labels:
            n += 1
            label = f"{base} ({n})"
        labels.append(label)
    return labels


def _trends(runs: Sequence[Mapping[str, Any]]) -> list[RunTrend]:
    trends = []
    for run, label in zip(runs, run_labels(runs), strict=True):
        by_state = run["by_state"]
        succeeded = by_state.get(ServerState.PATCHED, 0) + by_state.get(ServerState.PATCHED_NO_UPDATES, 0)
        failed = sum(by_state.get(s, 0) for s in ERROR_STATES)
        trends.append(RunTrend(run, label, succeeded, failed, by_state.get(ServerState.PLANNED_DRY_RUN, 0)))
    return trends


def _trend_charts(trends: list[RunTrend]) -> list[BarChart]:
    if not trends:
        return []
    status_series = [(str(key), label, colour) for key, (label, colour) in STATUS_STYLE.items()]
    return [
        stacked_bar_layout(
            "chart-run-states",
            "Servers per run, by state",
            {t.label: t.run["by_state"] for t in trends},
            state_series(),
        ),
        stacked_bar_layout(
            "chart-run-compliance",
            "Fleet compliance after each run",
            {t.label: {k: t.run[f"fleet_{k}"] for k in STATUS_STYLE} for t in trends},
            status_series,
        ),
    ]


def _cards(summary: Mapping[str, Any]) -> list[Card]:
    pct = summary["compliance_pct"]
    values = [
        ("compliance_pct", "Fleet compliance %", "n/a" if pct is None else pct),
        ("servers", "Servers", summary["servers"]),
        ("compliant", "Compliant", summary["compliant"]),
        ("non_compliant", "Non-compliant", summary["non_compliant"]),
        ("not_patchable", "Not patchable", summary["not_patchable"]),
        ("runs_included", "Runs included", summary["runs_included"]),
        ("dry_runs", "Dry runs (not counted)", summary.get("dry_runs", 0)),
        ("runs_ignored", "Runs ignored", summary["runs_ignored"]),
        ("packs_excluded", "Packs excluded", summary.get("packs_excluded", 0)),
    ]
    return [Card(key, label, shown_value(value)) for key, label, value in values]


def build_compliance_page(report: ComplianceReport) -> CompliancePage:
    """Headline compliance, servers by status (non-compliant first, each once), trend, dry runs."""
    sections = [
        ServerSection(status, SECTION_TITLES[status], [_verdict(server) for server in servers])
        for status, servers in listing(report.servers)
    ]
    trends = _trends(report.runs)
    return CompliancePage(
        as_of=report.as_of,
        policy_days=report.policy_days,
        validation=validation_banner(report.validation, "compliance report"),
        checks=validation_checks(report.validation),
        anchor=AnchorNotice(report.evidence.get("anchor"), report.anchor_mismatch),
        excluded=report.excluded,
        cards=_cards(report.summary),
        sections=sections,
        charts=_trend_charts(trends),
        runs=trends,
        dry_runs=_trends(report.dry_runs),
        ignored=report.ignored,
    )


def render_compliance_html(report: ComplianceReport) -> str:
    """The compliance report page."""
    return REPORT_TEMPLATES.render("compliance_report.html.j2", page=build_compliance_page(report))
