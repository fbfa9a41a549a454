"""What the report pages show, decided in Python and read here without any HTML: the view
models behind the templates (which rows need attention and in which order, the numbers, the
chart geometry, the validation verdict)."""

from __future__ import annotations

from audit_samples import make_row, make_run

from include.reporting.attention import needs_attention, rows_needing_attention, why_attention
from include.reporting.audit_document import build_audit_document
from include.reporting.compliance import ComplianceReport, ComplianceStatus
from include.reporting.compliance_html import build_compliance_page
from include.reporting.html_report import build_run_report, patch_line
from include.reporting.page_parts import (
    NOT_REPORTED,
    ValidationOutcome,
    state_badge,
    validation_banner,
    validation_checks,
)
from include.reporting.svg_charts import BAR_WIDTH, LABEL_WIDTH, stacked_bar_layout

SUMMARY = dict(compliance_pct=None, servers=2, compliant=1, non_compliant=1, not_patchable=0,
               runs_included=1, runs_ignored=0)  # fmt: skip
SERIES = [("patched", "Patched", "#0a0"), ("failed", "Failed", "#a00"), ("timed_out", "Timed out", "#f80")]


def test_attention_is_problem_states_unknown_states_and_servers_left_in_maintenance():
    assert needs_attention({"state": "failed"}) and needs_attention({"state": "not_attempted"})
    assert needs_attention({"state": "exploded"})  # a state nobody knows is never hidden
    assert needs_attention({"state": "patched", "maintenance": "left_on"})
    assert not needs_attention({"state": "patched", "maintenance": "released"})
    assert not needs_attention({"state": "skipped_template"})


def test_a_stopped_or_paused_server_needs_attention_with_why():
    row = {"state": "skipped_not_running", "reason": "power state is 'paused', not 'started'"}
    assert needs_attention(row)
    assert why_attention(row).startswith("stopped or paused: not patched until it runs")
    assert why_attention({"state": "failed", "maintenance": "left_on"}) == (
        "not patched: the package or a patch failed; left in maintenance mode by this run"
    )
    assert why_attention({"state": "skipped_template"}) == ""


def test_rows_needing_attention_come_worst_first_then_by_server():
    rows = [
        {"server_id": "b", "state": "not_attempted"},
        {"server_id": "z", "state": "patched", "maintenance": "left_on"},
        {"server_id": "c", "state": "failed"},
        {"server_id": "a", "state": "failed"},
        {"server_id": "y", "state": "exploded"},
        {"server_id": "x", "state": "patched"},
    ]
    assert [r["server_id"] for r in rows_needing_attention(rows)] == ["y", "z", "a", "c", "b"]


def test_the_run_report_model_has_the_cards_problems_and_metadata(rows, run):
    rows.append(make_row("va1demoodd", "exploded", reason="a state from the future"))
    report = build_run_report(build_audit_document(rows, run), None, audit_sha256="ab" * 32)
    cards = {card.key: card.metric.text for card in report.cards}
    assert (cards["total"], cards["failed"], cards["skipped"], cards["reboots"]) == ("10", "1", "3", "1")
    assert [line.row["server_id"] for line in report.problems] == [
        "va1demoodd",
        "va1demowin01",
        "uc1demodb01",
        "va1demoapp01",
        "uc1demooff01",
    ]
    assert report.problems[0].badge.label == "unknown state exploded"
    assert report.validation.outcome is ValidationOutcome.MISSING and report.checks is None
    assert ("Triggered by", "alice") in report.metadata and report.audit_sha256 == "ab" * 32


def test_unreported_reboots_are_a_note_not_a_number(rows, run):
    document = build_audit_document([row | {"reboots": None} for row in rows], run)
    report = build_run_report(document, None)
    (reboots,) = [card.metric for card in report.cards if card.key == "reboots"]
    assert (reboots.text, reboots.note) == ("n/r", NOT_REPORTED)
    assert {line.reboots.text for line in report.servers} == {"n/r"}


def test_a_patch_line_shows_the_kb_code_and_attempts_only_when_they_add_something():
    title = "Security Update (KB3138615)"
    assert patch_line({"name": title, "kb": "KB3138615", "status": "failed", "result_code": 4}).kb is None
    line = patch_line(
        {"name": "KB4012212 fix", "kb": "KB9", "status": "failed", "result_code": "", "attempts": 3}
    )
    assert (line.kb, line.result_code, line.attempts) == ("KB9", None, 3)
    assert patch_line({"name": "bash", "status": "completed", "attempts": 1}).attempts is None


def test_validation_banner_and_checks():
    failed = {
        "success": False,
        "failed": ["a"],
        "checks": [
            {"name": "a", "success": False, "unexpected_rows": ["va1", "va2"]},
            {"name": "b", "success": True, "observed": {"rows": 3}},
        ],
    }
    assert validation_banner(failed).failed == ("a",)
    assert validation_banner({"success": True, "evaluated": 7}, "x").evaluated == 7
    assert [(c.name, c.detail) for c in validation_checks(failed)] == [
        ("a", "va1, va2"),
        ("b", '{"rows": 3}'),
    ]


def test_badges_carry_label_colour_and_readable_ink():
    assert state_badge("failed").label == "Failed" and state_badge("failed").ink == "#fff"
    assert state_badge("not_attempted").ink == "#1f2328"  # light colour, dark text


def test_chart_layout_scales_to_the_largest_group_and_lists_used_series_only():
    chart = stacked_bar_layout("c", "t", {"VA1": {"patched": 3, "failed": 1}, "UC1": {"patched": 2}}, SERIES)
    va1, uc1 = chart.bars
    assert [s.x for s in va1.segments] == [LABEL_WIDTH, LABEL_WIDTH + 330.0]
    assert sum(s.width for s in va1.segments) == BAR_WIDTH and uc1.segments[0].width == 220.0
    assert va1.segments[1].tooltip == "VA1 - Failed: 1" and (va1.total, uc1.total) == (4, 2)
    assert [entry.label for entry in chart.legend] == ["Patched", "Failed"]
    assert [entry.x for entry in chart.legend] == [0, chart.width / 3]
    empty = stacked_bar_layout("e", "t", {}, SERIES)
    assert empty.bars == () and empty.legend == () and empty.height > 0


def test_the_compliance_page_lists_non_compliant_servers_and_the_anchor_verdict():
    def server(server_id: str, status: ComplianceStatus) -> dict:
        return {"server_id": server_id, "status": status, "last_state": "patched"}

    report = ComplianceReport(
        as_of="2026-12-01T00:00:00Z",
        policy_days=35,
        servers=[server("a", ComplianceStatus.COMPLIANT), server("b", ComplianceStatus.NON_COMPLIANT)],
        runs=[
            {
                "run_id": "r1",
                "started_at": "2026-11-30T09:15:42Z",
                "by_state": {"patched": 2, "failed": 1, "timed_out": 1},
            }
            | _fleet(1, 1, 0)
        ],
        ignored=[],
        summary=SUMMARY,
        evidence={"anchor": {"status": "not_found", "message": "ANCHOR MISMATCH"}},
    )
    page = build_compliance_page(report)
    listed = [
        (section.status, [v.server["server_id"] for v in section.verdicts]) for section in page.sections
    ]
    assert listed == [
        ("non_compliant", ["b"]),
        ("compliant", ["a"]),
        ("not_patchable", []),
    ]  # non-compliant first, and every server in exactly one section (issue 10: listed twice)
    attention = page.sections[0].verdicts
    assert attention[0].status.label == "Non-compliant" and attention[0].status.attribute == "status"
    assert page.anchor.mismatch
    assert (page.runs[0].succeeded, page.runs[0].failed) == (2, 2)
    assert page.runs[0].label == "2026-11-30 09:15" and page.charts[0].bars[0].label == "2026-11-30 09:15"
    assert [chart.chart_id for chart in page.charts] == ["chart-run-states", "chart-run-compliance"]
    assert {card.key: card.metric.text for card in page.cards}["compliance_pct"] == "n/a"


def _fleet(compliant: int, non_compliant: int, not_patchable: int) -> dict:
    return {"fleet_compliant": compliant, "fleet_non_compliant": non_compliant,
            "fleet_not_patchable": not_patchable}  # fmt: skip


def test_the_run_report_uses_the_run_metadata_as_given(run):
    report = build_run_report(build_audit_document([], make_run(dry_run=True, triggered_by=None)), None)
    assert ("Triggered by", "scheduler / system") in report.metadata and ("Dry run", "yes") in report.metadata
    assert report.problems == [] and report.servers == []
