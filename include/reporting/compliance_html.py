"""The self-contained compliance report page (same shell and rules as the run report)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.patching.states import ServerState
from include.reporting.html_report import (
    STATE_COLOURS,
    STATE_LABELS,
    e,
    page,
    state_badge,
    validation_banner,
    validation_table,
)
from include.reporting.svg_charts import stacked_bar_chart

if TYPE_CHECKING:
    from include.reporting.compliance import ComplianceReport

STATUS_STYLE = {
    "compliant": ("Compliant", "#1a7f37"),
    "non_compliant": ("Non-compliant", "#cf222e"),
    "not_patchable": ("Not patchable", "#6e7781"),
}


def _status(status: str) -> str:
    label, colour = STATUS_STYLE.get(status, (f"unknown {status}", "#24292f"))
    return f'<span class="state" style="background:{colour}" data-status="{e(status)}">{e(label)}</span>'


def _server_rows(servers: list[dict]) -> str:
    return "".join(
        f'<tr data-server-id="{e(s["server_id"])}"><td class="mono">{e(s["server_id"])}</td>'
        f"<td>{e(s['server_name'])}</td><td>{e(s['data_center'])}</td><td>{e(s['os'])}</td>"
        f'<td>{_status(s["status"])}</td><td class="num">{e(s["days_since_success"])}</td>'
        f'<td class="mono">{e(s["last_success_at"])}</td><td>{state_badge(s["last_state"])}</td>'
        f'<td class="mono">{e(s["last_seen_run_id"])}</td><td>{e(s["explanation"])}</td></tr>'
        for s in servers
    )


def _server_table(servers: list[dict]) -> str:
    return (
        "<table><thead><tr><th>Server</th><th>Name</th><th>DC</th><th>OS</th><th>Status</th>"
        '<th class="num">Days since success</th><th>Last success</th><th>Last state</th>'
        f"<th>Last seen in run</th><th>Why</th></tr></thead><tbody>{_server_rows(servers)}</tbody></table>"
    )


def _trend(report: ComplianceReport) -> str:
    if not report.runs:
        return "<p>No sealed run yet.</p>"
    series = [(s.value, STATE_LABELS[s], STATE_COLOURS[s]) for s in ServerState]
    states_chart = stacked_bar_chart(
        "chart-run-states",
        "Servers per run, by state",
        {r["run_id"]: r["by_state"] for r in report.runs},
        series,
    )
    status_series = [(key, label, colour) for key, (label, colour) in STATUS_STYLE.items()]
    status_chart = stacked_bar_chart(
        "chart-run-compliance",
        "Fleet compliance after each run",
        {r["run_id"]: {k: r[f"fleet_{k}"] for k in STATUS_STYLE} for r in report.runs},
        status_series,
    )
    rows = "".join(
        f'<tr data-run-id="{e(r["run_id"])}"><td class="mono">{e(r["run_id"])}'
        f"{' (dry run)' if r['dry_run'] else ''}"
        f'</td><td class="mono">{e(r["started_at"])}</td><td class="num">{r["total"]}</td>'
        f'<td class="num">{r["by_state"].get("patched", 0) + r["by_state"].get("patched_no_updates", 0)}</td>'
        f'<td class="num">{r["by_state"].get("failed", 0) + r["by_state"].get("timed_out", 0)}</td>'
        f'<td class="num" data-run-compliance="{e(r["run_id"])}">{e(r["fleet_compliance_pct"])}</td></tr>'
        for r in report.runs
    )
    return (
        f'<div class="charts"><figure>{states_chart}</figure><figure>{status_chart}</figure></div>'
        '<table><thead><tr><th>Run</th><th>Started</th><th class="num">Servers</th>'
        '<th class="num">Patched / up to date</th><th class="num">Failed / timed out</th>'
        f'<th class="num">Fleet compliance %</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _evidence_banners(report: ComplianceReport) -> str:
    """Red when the anchor does not match or packs were excluded; a quiet line otherwise."""
    anchor = report.evidence.get("anchor")
    parts = []
    if anchor and anchor["status"] == "not_found":
        parts.append(
            f'<div class="banner failed" role="alert" data-anchor="not_found">{e(anchor["message"])} '
            f"(expected manifest SHA-256 <code>{e(anchor['expected_manifest_sha256'])}</code>, from the "
            f"{e(anchor['source'])}). Do not rely on this report until the cause is understood.</div>"
        )
    if report.excluded:
        parts.append(
            '<div class="banner failed" role="alert" data-evidence="excluded">'
            f"{len(report.excluded)} evidence pack(s) failed verification (or are not covered by the chain "
            "and its anchor) and are NOT counted: see Excluded evidence below.</div>"
        )
    if anchor and anchor["status"] != "not_found":
        parts.append(
            f'<p class="muted" data-anchor="{e(anchor["status"])}">Anchor: {e(anchor["message"])}.</p>'
        )
    elif not anchor:
        parts.append(
            '<p class="muted" data-anchor="none">No anchor: the newest pack was not compared with a '
            "patch_audit asset event.</p>"
        )
    return "".join(parts)


def _excluded_table(report: ComplianceReport) -> str:
    if not report.excluded:
        return ""
    rows = "".join(
        f'<tr data-excluded-pack="{e(item["pack"])}"><td class="mono">{e(item["run_id"])}</td>'
        f'<td class="mono">{e(item["pack"])}</td><td><ul>'
        + "".join(f"<li>{e(reason)}</li>" for reason in item["reasons"])
        + "</ul></td></tr>"
        for item in report.excluded
    )
    return (
        f"<h2>Excluded evidence ({len(report.excluded)})</h2><table><thead><tr><th>Run</th><th>Pack</th>"
        f"<th>Why it is not counted</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def render_compliance_html(report: ComplianceReport) -> str:
    """Headline compliance, non-compliant servers first, trend per run, ignored runs."""
    summary = report.summary
    pct = summary["compliance_pct"]
    cards = [
        ("compliance_pct", "Fleet compliance %", "n/a" if pct is None else pct),
        ("servers", "Servers", summary["servers"]),
        ("compliant", "Compliant", summary["compliant"]),
        ("non_compliant", "Non-compliant", summary["non_compliant"]),
        ("not_patchable", "Not patchable", summary["not_patchable"]),
        ("runs_included", "Runs included", summary["runs_included"]),
        ("runs_ignored", "Runs ignored", summary["runs_ignored"]),
        ("packs_excluded", "Packs excluded", summary.get("packs_excluded", 0)),
    ]
    card_html = (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><span class="n" data-metric="{key}">{e(value)}</span>'
            f'<span class="l">{e(label)}</span></div>'
            for key, label, value in cards
        )
        + "</div>"
    )
    attention = [s for s in report.servers if s["status"] == "non_compliant"]
    ignored = "".join(
        f'<tr><td class="mono">{e(item["run"])}</td><td>{e(item["reason"])}</td></tr>'
        for item in report.ignored
    )
    body = (
        "<header><h1>Fleet patch compliance</h1>"
        f'<p class="sub">As of <code data-as-of="{e(report.as_of)}">{e(report.as_of)}</code>; policy: a '
        f"successful patch within the last <strong>{report.policy_days}</strong> days. Servers whose OS "
        "the patching service does not support (and templates) are reported as not patchable.</p></header>"
        f"{validation_banner(report.validation, 'compliance report')}{_evidence_banners(report)}"
        f"<h2>Summary</h2>{card_html}{_excluded_table(report)}"
        f"<h2>Non-compliant servers ({len(attention)})</h2>"
        + (_server_table(attention) if attention else "<p>None.</p>")
        + f"<h2>Trend per run</h2>{_trend(report)}"
        f"<h2>All servers ({len(report.servers)})</h2>{_server_table(report.servers)}"
        "<h2>Runs left out</h2>"
        + (
            f"<table><thead><tr><th>Run / pack</th><th>Why</th></tr></thead><tbody>{ignored}</tbody></table>"
            if ignored
            else "<p>None.</p>"
        )
        + f"<h2>Validation</h2>{validation_table(report.validation)}"
        "<footer><p>Rebuilt on every run from the evidence packs that verify (every file hash and chain "
        "link intact, listed in chain.json); any other pack is excluded and listed above.</p></footer>"
    )
    return page(f"Patch compliance as of {report.as_of}", body)
