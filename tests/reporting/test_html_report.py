"""The HTML report: self-contained, escaped, numbers match the audit, failures first, red banner."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from audit_samples import HOSTILE, make_row, make_run

from include.reporting.audit_document import build_audit_document
from include.reporting.html_report import render_report_html
from include.reporting.svg_charts import stacked_bar_chart

PASSED = {"suite": "audit", "success": True, "evaluated": 17, "failed": [], "checks": []}
FAILED = {
    "suite": "audit",
    "success": False,
    "evaluated": 2,
    "failed": ["no_kernel_or_nss_on_rhel"],
    "checks": [
        {"name": "unique_server_id", "description": "once", "success": True},
        {
            "name": "no_kernel_or_nss_on_rhel",
            "description": "no kernel",
            "success": False,
            "unexpected_rows": ["va1demoweb01"],
            "unexpected_sample": ["kernel-2.6"],
        },
    ],
}


class _Collector(HTMLParser):
    """Collects tags, attributes and text the way a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def metrics(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-metric="([a-z_]+)">(\d+)<', html)}


def test_report_is_self_contained(rows, run):
    html = render_report_html(build_audit_document(rows, run), PASSED)
    tags = parse(html).tags
    assert not [t for t, _ in tags if t in {"script", "link", "iframe", "img", "object", "embed"}]
    for _, attrs in tags:
        for name in ("src", "href", "action"):
            assert name not in attrs
    assert "url(" not in html and "@import" not in html
    urls = [v for _, attrs in tags for k, v in attrs.items() if "://" in (v or "") and k != "xmlns"]
    assert urls == []  # (a description may *mention* a URL as text; nothing loads one)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_hostile_strings_are_text_not_markup(rows, run):
    rows.append(
        make_row("va1evil", "failed", reason='"><img src=x onerror=alert(2)>', server_name="<b>X</b>")
    )
    html = render_report_html(build_audit_document(rows, run), PASSED)
    parsed = parse(html)
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE in "".join(parsed.text)  # shown as text to the reader
    assert not [t for t, _ in parsed.tags if t in {"script", "img", "b"}]
    assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)


def test_numbers_shown_equal_the_audit_summary(rows, run):
    document = build_audit_document(rows, run)
    html = render_report_html(document, PASSED)
    summary, shown = document["summary"], metrics(html)
    assert shown["total"] == summary["total"] == 9
    assert shown["attempted"] == summary["attempted"]
    assert shown["failed"] == summary["by_state"]["failed"]
    assert shown["skipped"] == 3
    assert (shown["patches_installed"], shown["patches_failed"], shown["reboots"]) == (2, 1, 1)
    per_state = {k: int(v) for k, v in re.findall(r'data-state-count="([a-z_]+)">(\d+)<', html)}
    assert per_state == summary["by_state"]
    assert len(re.findall(r'<tr data-server-id="', html)) == 9


def test_failures_come_first_with_reasons(rows, run):
    html = render_report_html(build_audit_document(rows, run), PASSED)
    problems_at = html.index("Failures and servers needing attention")
    assert problems_at < html.index("All servers (9)")
    problem_ids = re.findall(r'data-problem-server="([^"]+)"', html)
    # failed, timed out, not attempted, then the stopped server (never patched while it is stopped)
    assert problem_ids == ["va1demowin01", "uc1demodb01", "va1demoapp01", "uc1demooff01"]
    assert html.index("patch KB4012212 failed with 0x80070005") < html.index("All servers (9)")


def test_a_server_left_in_maintenance_is_listed_for_attention_with_the_reason(rows, run):
    """Issue 8, item 3: a patched server whose release was refused must not look like a success."""
    web = next(row for row in rows if row["server_id"] == "va1demoweb01")
    assert web["state"] == "patched"
    web.update(maintenance="left_on", maintenance_note="stopMaintenance refused: <server rebooting>")
    html = render_report_html(build_audit_document(rows, run), PASSED)
    attention = html[html.index("Failures and servers needing attention") : html.index("All servers (9)")]
    assert 'data-problem-server="va1demoweb01"' in attention
    assert "left in maintenance: stopMaintenance refused: &lt;server rebooting&gt;" in attention
    assert metrics(html)["left_in_maintenance"] == 1


def test_failed_validation_shows_red_banner(rows, run):
    html = render_report_html(build_audit_document(rows, run), FAILED)
    assert 'class="banner failed" role="alert" data-validation="failed"' in html
    assert "VALIDATION FAILED" in html and "no_kernel_or_nss_on_rhel" in html
    assert 'data-check="no_kernel_or_nss_on_rhel" data-success="false"' in html
    assert "va1demoweb01" in html[html.index('data-check="no_kernel_or_nss_on_rhel"') :]
    ok = render_report_html(build_audit_document(rows, run), PASSED)
    assert 'data-validation="passed"' in ok and "VALIDATION FAILED" not in ok


def test_run_metadata_is_shown(rows, run):
    html = render_report_html(build_audit_document(rows, run), PASSED)
    # the parameters' JSON is escaped: MarkupSafe (Jinja2's autoescape) writes '"' as &#34;
    for expected in ("manual__2026-11-27T14:00:00+00:00", "alice", "&#34;data_centers&#34;", "3.3.2"):
        assert expected in html
    dry = render_report_html(build_audit_document([], make_run(dry_run=True, triggered_by=None)), PASSED)
    assert "Dry run: nothing was patched" in dry and "scheduler / system" in dry


def test_chart_has_accessible_title_and_segment_per_state():
    svg = stacked_bar_chart(
        "c1",
        "Per DC <all>",
        {"VA1": {"patched": 3, "failed": 1}, "UC1": {"patched": 2}},
        [("patched", "Patched", "#0a0"), ("failed", "Failed", "#a00"), ("timed_out", "Timed out", "#f80")],
    )
    assert '<svg class="chart" role="img" aria-labelledby="c1-title"' in svg
    assert '<title id="c1-title">Per DC &lt;all&gt;</title>' in svg
    assert svg.count("<rect") == 3 + 2  # 3 bar segments + 2 legend swatches (timed_out unused)
    assert "<title>VA1 - Failed: 1</title>" in svg
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)" height="18"', svg)]
    assert widths[0] + widths[1] == 440.0  # the largest group spans the full bar width


def test_a_kb_already_in_the_patch_title_is_not_repeated(run):
    title = "Security Update for Windows Server 2012 R2 (KB3138615)"
    patch = {"name": title, "kb": "KB3138615", "result_code": 4, "status": "failed",
             "start_time": None, "end_time": None, "attempts": 1}  # fmt: skip
    rows = [make_row("va1win01", "failed", patches=[patch], patches_failed=1, reason="1 of 1 patches failed")]
    html = render_report_html(build_audit_document(rows, run), PASSED)
    assert html.count("KB3138615") == 2  # once in the failures list, once in the all-servers table


def attention_part(html: str) -> str:
    return html[html.index("Failures and servers needing attention") : html.index("All servers (")]


def test_a_stopped_or_paused_server_needs_attention_and_the_report_says_why(run):
    rows = [
        make_row("va1demooff01", "skipped_not_running", reason="power state is 'stopped', not 'started'"),
        make_row("va1demopau01", "skipped_not_running", reason="power state is 'paused', not 'started'"),
        make_row("va1demotpl01", "skipped_template", reason="template"),
    ]
    html = render_report_html(build_audit_document(rows, run), PASSED)
    attention = attention_part(html)
    assert re.findall(r'data-problem-server="([^"]+)"', attention) == ["va1demooff01", "va1demopau01"]
    why = dict(re.findall(r'data-why="([^"]+)">([^<]*)<', attention))
    assert why["va1demooff01"].startswith("stopped or paused: not patched until it runs")
    assert "power state is &#39;paused&#39;, not &#39;started&#39;" in attention


def test_a_result_code_is_explained_inline_and_in_a_legend(run):
    patches = [
        {"name": "Update A (KB1)", "kb": "KB1", "result_code": 4, "status": "failed", "attempts": 1},
        {"name": "Update B (KB2)", "kb": "KB2", "result_code": 2, "status": "completed", "attempts": 1},
    ]
    rows = [make_row("va1win01", "failed", patches=patches, patches_failed=1, reason="1 of 2 patches failed")]
    html = render_report_html(build_audit_document(rows, run), PASSED)
    assert "failed code 4 <span" in attention_part(html)
    assert "(Failed: the update could not be installed)</span>" in attention_part(html)
    everything = html[html.index("All servers (") : html.index('id="result-codes"')]
    assert "completed code 2 <span" in everything and ">(Succeeded)</span>" in everything
    legend = html[html.index('id="result-codes"') : html.index("<h2>Validation")]
    line = r'data-legend-code="(\d)"><td[^>]*>\d</td><td><strong>([^<]+)</strong>: ([^<]+)</td>'
    lines = re.findall(line + r'<td class="num">(\d+)<', legend)
    assert [(code, label, count) for code, label, _, count in lines] == [
        ("0", "Not started", "0"), ("1", "In progress", "0"), ("2", "Succeeded", "1"),
        ("3", "Succeeded with errors", "0"), ("4", "Failed", "1"), ("5", "Aborted", "0"),
    ]  # fmt: skip


def test_a_dry_runs_report_counts_the_planned_servers(run):
    rows = [make_row(f"va1plan{i}", "planned_dry_run", reason="dry run") for i in range(3)]
    rows.append(make_row("va1off01", "skipped_not_running", reason="stopped"))
    html = render_report_html(build_audit_document(rows, {**run, "dry_run": True}), PASSED)
    assert metrics(html)["planned_dry_run"] == 3
    assert "Planned (dry run): would be patched" in html


def test_a_real_run_shows_no_planned_card(rows, run):
    assert "planned_dry_run" not in metrics(render_report_html(build_audit_document(rows, run), PASSED))


def test_a_servers_completion_is_shown_on_patchflows_clock_above_the_apis_times(run):
    """The API's clock may run ahead (the simulator's does): a reader compares the run with our time."""
    row = make_row("va1demoweb01", "patched")
    row["ended_at"] = "2026-11-27T15:20:00Z"  # the service's clock, an hour ahead
    html = render_report_html(build_audit_document([row], run), PASSED)
    cell = re.search(r'<td class="mono" data-observed-at="([^"]*)">(.*?)</td>', html, re.S)
    assert cell is not None and cell.group(1) == "2026-11-27T14:20:04Z"
    assert cell.group(2).index("2026-11-27T14:20:04Z") < cell.group(2).index("2026-11-27T15:20:00Z")
    assert "Seen done" in html


def test_the_snapshot_evidence_in_words():
    from include.reporting.html_report import snapshot_text

    taken = {"snapshot": "confirmed", "snapshot_name": "2026-12-01.10:00:01", "snapshot_restored": True}
    assert (
        snapshot_text(taken | {"snapshot_fate": "kept"})
        == "snapshot 2026-12-01.10:00:01 of this run: restored, kept"
    )
    assert snapshot_text({"snapshot": None}) == ""
    why = "2048 GB of storage: the platform takes no snapshot over 1 TB"
    assert snapshot_text({"snapshot": "not_taken", "snapshot_note": why}) == f"no snapshot of this run: {why}"
    refused = {
        "snapshot": "not_taken",
        "snapshot_note": why,
        "reason": f"snapshot required: {why}; package not sent",
    }
    assert snapshot_text(refused) == "no snapshot of this run"  # the reason already says why
