"""The self-contained HTML audit report of one run.

No JavaScript, no external URL of any kind: inline CSS and inline SVG only, and a
Content-Security-Policy that forbids scripts, so the file can be archived, e-mailed and
opened offline years later. Every value that came from the API (descriptions, names,
reasons, patch names) goes through :func:`e` - ``html.escape(quote=True)``.

Numbers an auditor (or a test) may want to read back carry ``data-metric`` /
``data-state-count`` / ``data-server-id`` attributes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

from include.patching.audit_rows import MaintenanceResult
from include.patching.states import PROBLEM_STATES, SKIPPED_STATES, ServerState
from include.reporting.svg_charts import stacked_bar_chart
from include.reporting.text_safety import visible_text

STATE_LABELS: dict[str, str] = {
    ServerState.PATCHED: "Patched",
    ServerState.PATCHED_NO_UPDATES: "Up to date",
    ServerState.FAILED: "Failed",
    ServerState.TIMED_OUT: "Timed out",
    ServerState.NOT_ATTEMPTED: "Not attempted",
    ServerState.SKIPPED_UNSUPPORTED_OS: "Skipped: unsupported OS",
    ServerState.SKIPPED_NOT_RUNNING: "Skipped: not running",
    ServerState.SKIPPED_NOT_ACTIVE: "Skipped: not active",
    ServerState.SKIPPED_TEMPLATE: "Skipped: template",
    ServerState.SKIPPED_FILTERED: "Skipped: filtered out",
    ServerState.PLANNED_DRY_RUN: "Planned (dry run)",
}
STATE_COLOURS: dict[str, str] = {
    ServerState.PATCHED: "#1a7f37",
    ServerState.PATCHED_NO_UPDATES: "#4ac26b",
    ServerState.FAILED: "#cf222e",
    ServerState.TIMED_OUT: "#bc4c00",
    ServerState.NOT_ATTEMPTED: "#d4a72c",
    ServerState.SKIPPED_UNSUPPORTED_OS: "#6e7781",
    ServerState.SKIPPED_NOT_RUNNING: "#8c959f",
    ServerState.SKIPPED_NOT_ACTIVE: "#afb8c1",
    ServerState.SKIPPED_TEMPLATE: "#d0d7de",
    ServerState.SKIPPED_FILTERED: "#57606a",
    ServerState.PLANNED_DRY_RUN: "#0969da",
}
#: Badge colours light enough to need dark text (contrast).
LIGHT_STATES = frozenset(
    {
        ServerState.PATCHED_NO_UPDATES,
        ServerState.NOT_ATTEMPTED,
        ServerState.SKIPPED_NOT_ACTIVE,
        ServerState.SKIPPED_TEMPLATE,
    }
)
#: Scripts are forbidden outright; styles and SVG are inline only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { --ink:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#f6f8fa; --ok:#1a7f37; --bad:#cf222e; }
* { box-sizing: border-box; }
body { font: 14px/1.5 -apple-system, "Segoe UI", "Helvetica Neue", Arial, sans-serif; color: var(--ink);
  margin: 0 auto; max-width: 1280px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; } h3 { font-size: 15px; margin: 16px 0 6px; }
.sub { color: var(--muted); margin: 0; }
code, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
td.mono { white-space: nowrap; } td.desc { overflow-wrap: anywhere; max-width: 200px; }
.muted { color: var(--muted); }
table.servers { font-size: 12.5px; } table.servers .mono { font-size: 11.5px; }
figure { margin: 0; } figcaption { color: var(--muted); font-size: 12px; }
.banner { padding: 12px 16px; border-radius: 6px; margin: 16px 0; font-weight: 600; }
.banner.ok { background: #dafbe1; border: 1px solid var(--ok); color: #0f5323; }
.banner.failed { background: #ffebe9; border: 2px solid var(--bad); color: #82071e; }
.banner.dry { background: #ddf4ff; border: 1px solid #0969da; color: #0a3069; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; background: var(--bg); }
.card .n { font-size: 24px; font-weight: 600; display: block; }
.card .l { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; font-size: 12.5px; } td.num, th.num { text-align: right; }
.state { display: inline-block; padding: 0 7px; border-radius: 10px; color: #fff; font-size: 12px;
  white-space: nowrap; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; } .chart { max-width: 100%; height: auto; }
.chart-label, .chart-count, .chart-legend { font: 12px sans-serif; fill: var(--ink); }
ul.patches { margin: 0; padding-left: 16px; } ul.patches li.failed { color: var(--bad); }
.left-on { color: var(--bad); font-weight: 600; }
.pass { color: var(--ok); font-weight: 600; } .fail { color: var(--bad); font-weight: 600; }
pre { background: var(--bg); padding: 8px; border-radius: 6px; white-space: pre-wrap; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print { body { max-width: none; padding: 0; font-size: 11px; } h2 { break-after: avoid; }
  tr { break-inside: avoid; } .banner, .state, .card { -webkit-print-color-adjust: exact;
  print-color-adjust: exact; } }
"""


def e(value: Any) -> str:
    """Escape anything for HTML text or attribute context; ``None`` shows as an em dash."""
    if value is None or value == "":
        return "&mdash;"
    return escape(str(value), quote=True)


def state_badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, "#24292f")
    label = STATE_LABELS.get(state, f"unknown state {state}")
    ink = "#1f2328" if state in LIGHT_STATES else "#fff"
    style = f"background:{colour};color:{ink}"
    return f'<span class="state" style="{style}" data-state="{e(state)}">{e(label)}</span>'


def _series() -> list[tuple[str, str, str]]:
    return [(s.value, STATE_LABELS[s], STATE_COLOURS[s]) for s in ServerState]


def validation_banner(validation: Mapping[str, Any] | None, subject: str = "audit data") -> str:
    """Green when every check passed, a red ``role=alert`` banner naming the failed checks."""
    if validation is None:
        return '<div class="banner failed" role="alert" data-validation="missing">Not validated.</div>'
    if validation.get("success"):
        return (
            f'<div class="banner ok" data-validation="passed">Validation passed: all '
            f"{int(validation.get('evaluated', 0))} checks on the {e(subject)} succeeded.</div>"
        )
    failed = ", ".join(e(name) for name in validation.get("failed", []))
    return (
        f'<div class="banner failed" role="alert" data-validation="failed">VALIDATION FAILED: '
        f"the {e(subject)} failed {len(validation.get('failed', []))} check(s): {failed}. "
        "Do not rely on this report until the cause is understood.</div>"
    )


def validation_table(validation: Mapping[str, Any] | None) -> str:
    if not validation:
        return "<p>No validation result.</p>"
    rows = []
    for check in validation.get("checks", []):
        verdict = '<span class="pass">pass</span>' if check["success"] else '<span class="fail">FAIL</span>'
        offenders = ", ".join(
            str(v) for v in check.get("unexpected_rows") or check.get("unexpected_sample") or []
        )
        observed = check.get("observed")
        detail = offenders or ("" if observed is None else json.dumps(observed, default=str))
        rows.append(
            f'<tr data-check="{e(check["name"])}" data-success="{str(check["success"]).lower()}">'
            f'<td class="mono">{e(check["name"])}</td><td>{e(check.get("description"))}</td>'
            f'<td>{verdict}</td><td class="mono">{e(detail)}</td></tr>'
        )
    return (
        "<table><thead><tr><th>Check</th><th>What it proves</th><th>Result</th>"
        "<th>Observed / offending rows</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def page(title: str, body: str) -> str:
    """Wrap a body in the common, self-contained page shell; no control character gets through."""
    return visible_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n"
    )


def _cards(summary: Mapping[str, Any]) -> str:
    by_state = summary["by_state"]
    skipped = sum(by_state.get(s, 0) for s in SKIPPED_STATES)
    cards = [
        ("total", "Servers inventoried", summary["total"]),
        ("attempted", "Patching attempted", summary["attempted"]),
        ("patched", "Patched", by_state.get(ServerState.PATCHED, 0)),
        ("patched_no_updates", "Up to date", by_state.get(ServerState.PATCHED_NO_UPDATES, 0)),
        ("failed", "Failed", by_state.get(ServerState.FAILED, 0)),
        ("timed_out", "Timed out", by_state.get(ServerState.TIMED_OUT, 0)),
        ("not_attempted", "Not attempted", by_state.get(ServerState.NOT_ATTEMPTED, 0)),
        ("skipped", "Skipped (with reason)", skipped),
        (
            "left_in_maintenance",
            "Left in maintenance by this run",
            summary.get("by_maintenance", {}).get(MaintenanceResult.LEFT_ON, 0),
        ),
        ("patches_installed", "Patches installed", summary["patches_installed"]),
        ("patches_failed", "Patches failed", summary["patches_failed"]),
        ("reboots", "Reboots", summary["reboots"]),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><span class="n" data-metric="{key}"{_not_reported(value)}>'
            f'{_count(value)}</span><span class="l">{e(label)}</span></div>'
            for key, label, value in cards
        )
        + "</div>"
    )


def _state_table(by_state: Mapping[str, int]) -> str:
    rows = "".join(
        f'<tr><td>{state_badge(state)}</td><td class="mono">{e(state)}</td>'
        f'<td class="num" data-state-count="{e(state)}">{int(count)}</td></tr>'
        for state, count in by_state.items()
    )
    return (
        '<table style="max-width:560px"><thead><tr><th>State</th><th>Code</th><th class="num">Servers</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


#: Reboots are not reported by the patching service (§9) and never inferred: shown as "n/r".
_NOT_REPORTED = ' title="not reported by the patching service"'


def _not_reported(value: Any) -> str:
    return _NOT_REPORTED if value is None else ""


def _count(value: Any) -> str:
    return "n/r" if value is None else str(int(value))


def _patch_list(patches: list[Mapping[str, Any]]) -> str:
    if not patches:
        return "&mdash;"
    items = []
    for patch in patches:
        kb = f" ({e(patch.get('kb'))})" if patch.get("kb") else ""
        tries = f", {int(patch['attempts'])} attempts" if (patch.get("attempts") or 1) > 1 else ""
        code = f" code {e(patch.get('result_code'))}" if patch.get("result_code") not in (None, "") else ""
        items.append(
            f'<li class="{e(patch.get("status"))}">{e(patch.get("name"))}{kb}: '
            f"{e(patch.get('status'))}{code}{tries}</li>"
        )
    return '<ul class="patches">' + "".join(items) + "</ul>"


def left_in_maintenance(row: Mapping[str, Any]) -> bool:
    """The run may have put the server into maintenance and could not confirm it is out (I2)."""
    return row.get("maintenance") == MaintenanceResult.LEFT_ON


def _maintenance_line(row: Mapping[str, Any]) -> str:
    """Shows "left in maintenance: <reason>" for such a server, nothing otherwise."""
    if not left_in_maintenance(row):
        return ""
    return (
        f'<br><span class="left-on" data-left-in-maintenance="{e(row["server_id"])}">'
        f"left in maintenance: {e(row.get('maintenance_note'))}</span>"
    )


def _problem_table(servers: list[Mapping[str, Any]]) -> str:
    order = {state: index for index, state in enumerate(ServerState)}
    problems = sorted(
        (
            row
            for row in servers
            if row["state"] in PROBLEM_STATES or row["state"] not in order or left_in_maintenance(row)
        ),
        key=lambda row: (order.get(row["state"], -1), row["server_id"]),
    )
    if not problems:
        return (
            '<p data-problems="0">No server failed, timed out, was left unattempted or was left in '
            "maintenance.</p>"
        )
    rows = "".join(
        f'<tr data-problem-server="{e(row["server_id"])}"><td class="mono">{e(row["server_id"])}</td>'
        f"<td>{e(row['server_name'])}</td><td>{e(row['data_center'])}</td><td>{state_badge(row['state'])}</td>"
        f'<td>{e(row["reason"])}{_maintenance_line(row)}</td><td class="mono">{e(row["execution_id"])}</td>'
        f"<td>{_patch_list([p for p in row['patches'] if p.get('status') != 'completed'])}</td></tr>"
        for row in problems
    )
    return (
        f'<table data-problems="{len(problems)}"><thead><tr><th>Server</th><th>Name</th><th>DC</th>'
        "<th>State</th><th>Reason</th><th>Execution</th><th>Patches not completed</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _server_table(servers: list[Mapping[str, Any]]) -> str:
    rows = "".join(
        f'<tr data-server-id="{e(row["server_id"])}"><td><span class="mono">{e(row["server_id"])}</span>'
        f'<br><span class="muted">{e(row["server_name"])}</span></td>'
        f'<td class="desc">{e(row["description"])}</td>'
        f'<td>{e(row["data_center"])}<br><span class="muted">{e(row["group_name"])}</span></td>'
        f'<td>{e(row["os_type"])}<br><span class="mono muted">{e(row["os"])}</span></td>'
        f"<td>{state_badge(row['state'])}<br>{e(row['reason']) if row['reason'] else ''}"
        f"{_maintenance_line(row)}</td>"
        f'<td class="mono">{e(row["execution_id"])}<br>{e(row["queue_job_id"])}</td>'
        f'<td class="num">{int(row["patches_installed"])}</td>'
        f'<td class="num">{int(row["patches_failed"])}</td>'
        f'<td class="num"{_not_reported(row.get("reboots"))}>{_count(row.get("reboots"))}</td>'
        f'<td class="mono">{e(row["started_at"])}<br>{e(row["ended_at"])}</td>'
        f"<td>{_patch_list(row['patches'])}</td></tr>"
        for row in servers
    )
    return (
        '<table class="servers"><thead><tr><th>Server</th><th>Description</th><th>DC / group</th>'
        "<th>OS</th><th>State</th><th>Execution / job</th>"
        '<th class="num" title="patches installed">Inst.</th>'
        '<th class="num" title="patches failed">Fail.</th><th class="num">Reboots</th>'
        f"<th>Started / ended</th><th>Patches</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _run_metadata(run: Mapping[str, Any]) -> str:
    fields = [
        ("DAG", run.get("dag_id")),
        ("Run id", run.get("run_id")),
        ("Run type", run.get("run_type")),
        ("Triggered by", run.get("triggered_by") or "scheduler / system"),
        ("Account alias", run.get("account_alias")),
        ("Started", run.get("started_at")),
        ("Ended", run.get("ended_at")),
        ("Dry run", "yes" if run.get("dry_run") else "no"),
    ]
    rows = "".join(
        f'<tr><th style="width:180px">{e(k)}</th><td class="mono">{e(v)}</td></tr>' for k, v in fields
    )
    software = "".join(
        f'<tr><td>{e(name)}</td><td class="mono">{e(version)}</td></tr>'
        for name, version in sorted((run.get("software") or {}).items())
    )
    params = json.dumps(run.get("params"), indent=2, sort_keys=True, default=str)
    return (
        f"<table>{rows}</table><h3>Parameters</h3><pre>{e(params)}</pre>"
        f'<h3>Software</h3><table style="max-width:560px">{software}</table>'
    )


def render_report_html(
    document: Mapping[str, Any],
    validation: Mapping[str, Any] | None,
    *,
    audit_sha256: str | None = None,
) -> str:
    """The complete report page for one run's audit document and its validation verdict."""
    run, summary, servers = document["run"], document["summary"], document["servers"]
    series = _series()
    charts = (
        '<div class="charts"><figure>'
        + stacked_bar_chart("chart-os", "Servers per OS family, by state", summary["by_os_family"], series)
        + "<figcaption>Per OS family</figcaption></figure><figure>"
        + stacked_bar_chart(
            "chart-dc", "Servers per data center, by state", summary["by_data_center"], series
        )
        + "<figcaption>Per data center</figcaption></figure></div>"
    )
    dry = (
        '<div class="banner dry">Dry run: nothing was patched; "Planned" servers would have been.</div>'
        if run.get("dry_run")
        else ""
    )
    evidence = (
        f'<p>Generated from <code>audit.json</code> with SHA-256 <code data-audit-sha256="{e(audit_sha256)}">'
        f"{e(audit_sha256)}</code>.</p>"
        if audit_sha256
        else ""
    )
    body = (
        f"<header><h1>Patch run audit report</h1>"
        f'<p class="sub">Run <code data-run-id="{e(run.get("run_id"))}">{e(run.get("run_id"))}</code> of '
        f"<code>{e(run.get('dag_id'))}</code> on account <strong>{e(run.get('account_alias'))}</strong>, "
        f"{e(run.get('started_at'))} to {e(run.get('ended_at'))}</p></header>"
        f"{validation_banner(validation)}{dry}"
        f"<h2>Summary</h2>{_cards(summary)}"
        f"<h2>Servers by state</h2>{_state_table(summary['by_state'])}{charts}"
        f"<h2>Failures and servers needing attention</h2>{_problem_table(servers)}"
        f"<h2>All servers ({len(servers)})</h2>{_server_table(servers)}"
        f"<h2>Validation</h2>{validation_table(validation)}"
        f"<h2>Run</h2>{_run_metadata(run)}"
        f"<footer>{evidence}<p>The evidence pack's <code>manifest.json</code> holds the SHA-256 of every "
        "file and of the previous run's manifest. Check it with "
        "<code>python -m include.reporting verify &lt;reports location&gt;</code>.</p></footer>"
    )
    return page(f"Patch audit - {run.get('run_id')}", body)
