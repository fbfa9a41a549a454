"""The stage summary of a run (``include.patching.stage_report``) and its place in the run report."""

from __future__ import annotations

from include.patching.stage_report import preview, report_lines, summarize
from include.reporting.audit_document import build_audit_document
from include.reporting.html_report import render_report_html
from tests.reporting.audit_samples import fleet_rows, make_run

ROWS = [
    {"id": "a1", "data_center": "VA1", "os": "x", "package_key": "linux_yum", "state": None},
    {"id": "a2", "data_center": "VA1", "os": "x", "package_key": "linux_yum", "state": None},
    {"id": "a3", "data_center": "UC1", "os": "y", "package_key": "linux_yum", "state": None},
    {"id": "w1", "data_center": "VA1", "os": "w", "package_key": None, "state": "skipped_unsupported_os"},
]
LEDGER = {
    "stages": [
        {"index": 1, "spec": "1", "servers": ["a1"], "note": ""},
        {"index": 2, "spec": "1", "servers": ["a3"], "note": ""},
        {"index": 3, "spec": "rest", "servers": ["a2"], "note": ""},
    ],
    "servers": {
        "a1": {"state": "patched", "health": "healthy after 1 check(s)"},
        "a3": {"state": "unhealthy", "health": "not healthy after 4 check(s): 503"},
        "a2": {"state": "not_attempted"},
    },
    "halt": {
        "stage": 2,
        "reason": "rollout halted: stage 2 of 3 failed its health gate: a3 unhealthy",
        "kind": "gate",
    },
}


def test_a_dry_run_previews_each_package_plan_from_the_settings():
    stages = preview(ROWS, {"waves": ["1", "1"]})
    assert list(stages) == ["linux_yum"]
    assert [len(s["servers"]) for s in stages["linux_yum"]] == [1, 1, 1]
    assert preview(ROWS, {"waves": []}) == {}


def test_gates_say_passed_failed_and_not_reached_from_the_ledger():
    summary = summarize({"servers": ROWS}, {"linux_yum": LEDGER, "windows_2012": None})
    gates = [s["gate"] for s in summary["linux_yum"]["stages"]]
    assert gates == ["passed", "failed", "not reached"]
    assert summary["linux_yum"]["stages"][1]["unhealthy"] == ["a3"]
    lines, notes = report_lines(summary)
    assert [line.gate for line in lines] == gates
    assert notes == ["linux_yum: rollout halted: stage 2 of 3 failed its health gate: a3 unhealthy"]


def test_a_server_reverted_after_turning_unhealthy_is_still_named_unhealthy_in_its_stage():
    reverted = {"state": "reverted", "failed_state": "unhealthy", "health": "not healthy: 503"}
    ledger = {**LEDGER, "servers": {**LEDGER["servers"], "a3": reverted}}
    stage = summarize({"servers": ROWS}, {"linux_yum": ledger})["linux_yum"]["stages"][1]
    assert stage["unhealthy"] == ["a3"] and stage["gate"] == "failed" and stage["errors"] == 1
    failed = {**LEDGER["servers"]["a3"], "state": "reverted", "failed_state": "failed"}
    ledger = {**LEDGER, "servers": {**LEDGER["servers"], "a3": failed}}
    assert summarize({"servers": ROWS}, {"linux_yum": ledger})["linux_yum"]["stages"][1]["unhealthy"] == []


def test_a_stage_not_started_yet_is_waiting_and_its_servers_are_not_in_progress():
    """Mid-run, what the board shows: stage 1 has a server in flight, stage 2 none started."""
    ledger = {
        "stages": LEDGER["stages"][:2],
        "servers": {"a1": {"phase": "submitted", "state": None}, "a3": {"phase": "queued", "state": None}},
    }
    stages = summarize({"servers": ROWS}, {"linux_yum": ledger})["linux_yum"]["stages"]
    assert [(s["gate"], s["counts"]) for s in stages] == [
        ("running", {"in flight": 1}),
        ("waiting", {"waiting": 1}),
    ]


def test_a_rejection_is_a_clean_stop_with_who_and_when():
    ledger = {
        **LEDGER,
        "servers": {
            "a1": {"state": "patched"},
            "a3": {"state": "not_attempted"},
            "a2": {"state": "not_attempted"},
        },
        "halt": {
            "stage": 2,
            "reason": "rollout stopped after stage 1: rejected by alice",
            "kind": "decision",
        },
        "approval": {
            "approved": False,
            "by": "alice",
            "at": "2026-12-01T10:00:00Z",
            "asked": True,
            "note": "no",
        },
    }
    lines, notes = report_lines(summarize({"servers": ROWS}, {"linux_yum": ledger}))
    assert [line.gate for line in lines] == ["passed", "stopped", "stopped"]
    assert notes[0] == "linux_yum: the rest was not approved by alice at 2026-12-01T10:00:00Z — no"


def test_the_run_report_shows_the_stages_and_the_halt():
    run = make_run(stages=summarize({"servers": ROWS}, {"linux_yum": LEDGER}))
    html = render_report_html(build_audit_document(fleet_rows(), run), None)
    assert 'data-stage="linux_yum:2" data-gate="failed"' in html
    assert "stage 2 of 3 failed its health gate" in html
    assert "data-stages" not in render_report_html(build_audit_document(fleet_rows(), make_run()), None)
