"""The self-contained compliance report page (same shell and rules as the run report).

:func:`build_compliance_page` decides what the page shows; ``templates/compliance_report.html.j2``
displays it, escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from include.patching.states import ServerState
from include.reporting.compliance import ComplianceReport, ComplianceStatus
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
class RunTrend:
    """One run of the trend table."""

    run: Mapping[str, Any]
    succeeded: int
    failed: int


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
    attention: list[ServerVerdict]
    servers: list[ServerVerdict]
    charts: list[BarChart]
    runs: list[RunTrend]
    ignored: Sequence[Mapping[str, Any]]


def _verdict(server: Mapping[str, Any]) -> ServerVerdict:
    return ServerVerdict(server, status_badge(server["status"]), state_badge(server["last_state"]))


def _trend(run: Mapping[str, Any]) -> RunTrend:
    by_state = run["by_state"]
    succeeded = by_state.get(ServerState.PATCHED, 0) + by_state.get(ServerState.PATCHED_NO_UPDATES, 0)
    failed = by_state.get(ServerState.FAILED, 0) + by_state.get(ServerState.TIMED_OUT, 0)
    return RunTrend(run, succeeded, failed)


def _trend_charts(runs: list[dict[str, Any]]) -> list[BarChart]:
    if not runs:
        return []
    status_series = [(str(key), label, colour) for key, (label, colour) in STATUS_STYLE.items()]
    return [
        stacked_bar_layout(
            "chart-run-states",
            "Servers per run, by state",
            {r["run_id"]: r["by_state"] for r in runs},
            state_series(),
        ),
        stacked_bar_layout(
            "chart-run-compliance",
            "Fleet compliance after each run",
            {r["run_id"]: {k: r[f"fleet_{k}"] for k in STATUS_STYLE} for r in runs},
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
        ("runs_ignored", "Runs ignored", summary["runs_ignored"]),
        ("packs_excluded", "Packs excluded", summary.get("packs_excluded", 0)),
    ]
    return [Card(key, label, shown_value(value)) for key, label, value in values]


def build_compliance_page(report: ComplianceReport) -> CompliancePage:
    """Headline compliance, non-compliant servers first, trend per run, ignored runs."""
    verdicts = [_verdict(server) for server in report.servers]
    return CompliancePage(
        as_of=report.as_of,
        policy_days=report.policy_days,
        validation=validation_banner(report.validation, "compliance report"),
        checks=validation_checks(report.validation),
        anchor=AnchorNotice(report.evidence.get("anchor"), report.anchor_mismatch),
        excluded=report.excluded,
        cards=_cards(report.summary),
        attention=[v for v in verdicts if v.server["status"] == ComplianceStatus.NON_COMPLIANT],
        servers=verdicts,
        charts=_trend_charts(report.runs),
        runs=[_trend(run) for run in report.runs],
        ignored=report.ignored,
    )


def render_compliance_html(report: ComplianceReport) -> str:
    """The compliance report page."""
    return REPORT_TEMPLATES.render("compliance_report.html.j2", page=build_compliance_page(report))
