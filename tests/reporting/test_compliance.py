"""Compliance history rebuilt from sealed packs: policy, not-patchable, trend, broken runs.

GX is switched off here (``validate=False``) to keep this fast; the GX checks of the
compliance report are exercised in test_validation_gx.py.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from audit_samples import make_row, make_run

from include.reporting.audit_document import build_audit_document
from include.reporting.compliance import build_compliance_report, write_compliance_report
from include.reporting.evidence_pack import read_chain, write_evidence_pack

PASSED = {"suite": "audit", "success": True, "evaluated": 0, "failed": [], "checks": []}


def seal(base, day: str, states: dict[str, str], *, dry_run: bool = False) -> str:
    """Seal a run on ``day`` (YYYY-MM-DD) with one row per server id -> state."""
    run_id = f"scheduled__{day}T02:00:00+00:00"
    times = {"started_at": f"{day}T02:00:00Z", "ended_at": f"{day}T03:00:00Z"}
    rows = []
    for server_id, state in states.items():
        row = make_row(server_id, state)
        if row["started_at"]:
            row.update(times, observed_at=times["ended_at"])  # seen as the API ended it
        if state == "skipped_unsupported_os":
            row.update(os="ubuntu14_64Bit", os_type="Ubuntu 14")
        rows.append(row)
    run = make_run(run_id, run_type="scheduled", triggered_by=None, dry_run=dry_run, **times)
    write_evidence_pack(base, build_audit_document(rows, run), PASSED, now=datetime.now(UTC))
    return run_id


def pack_of(base, run_id: str):
    return base / "runs" / next(e["pack"] for e in read_chain(base) if e["run_id"] == run_id)


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+00:00")


@pytest.fixture
def history(tmp_path):
    """Three monthly runs over a small fleet with every interesting history."""
    seal(
        tmp_path,
        "2026-09-08",
        {"va1a": "patched", "va1b": "patched", "va1c": "failed", "va1old": "skipped_unsupported_os"},
    )
    seal(
        tmp_path,
        "2026-10-13",
        {
            "va1a": "patched_no_updates",
            "va1b": "failed",
            "va1c": "timed_out",
            "va1old": "skipped_unsupported_os",
            "va1new": "skipped_not_running",
        },
    )
    seal(
        tmp_path,
        "2026-11-10",
        {
            "va1a": "patched",
            "va1b": "skipped_filtered",
            "va1c": "failed",
            "va1old": "skipped_unsupported_os",
            "va1new": "patched",
        },
    )
    return tmp_path


def by_id(report):
    return {server["server_id"]: server for server in report.servers}


def test_verdicts_against_the_policy(history):
    report = build_compliance_report(history, as_of=at("2026-11-20"), validate=False)
    servers = by_id(report)
    assert servers["va1a"]["status"] == "compliant"
    assert servers["va1a"]["days_since_success"] == 10  # 2026-11-10T03:00 -> 2026-11-20T12:00
    assert servers["va1a"]["last_success_run_id"] == "scheduled__2026-11-10T02:00:00+00:00"
    assert servers["va1b"]["status"] == "non_compliant"  # last success 2026-09-08, 73 days
    assert servers["va1b"]["days_since_success"] == 73
    assert servers["va1b"]["last_state"] == "skipped_filtered"
    assert servers["va1c"]["status"] == "non_compliant"
    assert servers["va1c"]["days_since_success"] is None
    assert servers["va1c"]["explanation"] == "never successfully patched"
    assert servers["va1old"]["status"] == "not_patchable"
    assert servers["va1new"]["status"] == "compliant"
    assert report.summary == {
        "servers": 5,
        "compliant": 2,
        "non_compliant": 2,
        "not_patchable": 1,
        "compliance_pct": 50.0,
        "runs_included": 3,
        "dry_runs": 0,
        "runs_ignored": 0,
        "packs_excluded": 0,
    }
    assert report.evidence["status"] == "verified" and report.evidence["packs_verified"] == 3


def test_policy_boundary_is_inclusive(history):
    # va1a succeeded 2026-11-10T03:00; exactly 35 days later is still compliant, 36 is not
    assert (
        by_id(build_compliance_report(history, as_of=datetime(2026, 12, 15, 3, tzinfo=UTC), validate=False))[
            "va1a"
        ]["status"]
        == "compliant"
    )
    late = by_id(
        build_compliance_report(history, as_of=datetime(2026, 12, 16, 3, tzinfo=UTC), validate=False)
    )
    assert late["va1a"]["status"] == "non_compliant" and late["va1a"]["days_since_success"] == 36
    strict = by_id(build_compliance_report(history, as_of=at("2026-11-20"), policy_days=5, validate=False))
    assert strict["va1a"]["status"] == "non_compliant"


def test_as_of_in_the_past_ignores_later_runs(history):
    report = build_compliance_report(history, as_of=at("2026-10-01"), validate=False)
    assert [run["run_id"] for run in report.runs] == ["scheduled__2026-09-08T02:00:00+00:00"]
    assert "va1new" not in by_id(report)
    assert by_id(report)["va1b"]["status"] == "compliant"
    assert {item["reason"] for item in report.ignored} == {"started after as_of"}


def test_trend_per_run(history):
    runs = build_compliance_report(history, as_of=at("2026-11-20"), validate=False).runs
    assert [run["by_state"]["patched"] for run in runs] == [2, 0, 2]
    assert [run["by_state"]["failed"] for run in runs] == [1, 1, 1]
    # after run 1: a, b compliant, c not, old not patchable -> 66.7 %
    # after run 2: a, b compliant (b's success is 35 days old), c and new not -> 50 %
    # after run 3: a, new compliant; b (63 days), c not -> 50 %
    assert [run["fleet_compliance_pct"] for run in runs] == [66.7, 50.0, 50.0]
    assert [run["fleet_not_patchable"] for run in runs] == [1, 1, 1]


def test_not_patchable_follows_the_latest_informative_state(tmp_path):
    seal(tmp_path, "2026-09-08", {"va1x": "skipped_unsupported_os"})
    seal(tmp_path, "2026-10-13", {"va1x": "skipped_filtered"})  # says nothing about the OS
    assert (
        by_id(build_compliance_report(tmp_path, as_of=at("2026-10-20"), validate=False))["va1x"]["status"]
        == "not_patchable"
    )
    seal(tmp_path, "2026-11-10", {"va1x": "failed"})  # OS upgraded: now eligible, and failing
    assert (
        by_id(build_compliance_report(tmp_path, as_of=at("2026-11-20"), validate=False))["va1x"]["status"]
        == "non_compliant"
    )


def test_broken_runs_are_excluded_or_left_out_and_reported_never_crash(history):
    crashed = history / "runs" / "manual__crashed"
    crashed.mkdir()
    (crashed / "audit.json").write_text("{ half")
    tampered = pack_of(history, "scheduled__2026-10-13T02:00:00+00:00")
    audit = tampered / "audit.json"
    audit.write_text(audit.read_text().replace('"failed"', '"patched"'))
    report = build_compliance_report(
        history,
        as_of=at("2026-11-20"),
        validate=False,
        expected_run_ids=["scheduled__2026-11-10T02:00:00+00:00", "manual__2026-11-25T09:00:00+00:00"],
    )
    reasons = {item["run"]: item["reason"] for item in report.ignored}
    assert reasons["manual__crashed"].startswith("incomplete evidence pack (no manifest)")
    assert reasons["manual__2026-11-25T09:00:00+00:00"].startswith("no evidence pack")
    assert len(reasons) == 2  # the sealed, expected run is not reported missing
    [excluded] = report.excluded
    assert excluded["run_id"] == "scheduled__2026-10-13T02:00:00+00:00" and excluded["pack"] == tampered.name
    assert excluded["reasons"][0].startswith(f"runs/{tampered.name}/audit.json: modified")
    assert len(report.runs) == 2 and report.summary["runs_ignored"] == 2
    assert report.summary["packs_excluded"] == 1 and report.evidence["status"] == "tampered"
    assert by_id(report)["va1b"]["days_since_success"] == 73  # the forged success did not count


def test_empty_location_gives_an_empty_report(tmp_path):
    report = build_compliance_report(tmp_path, as_of=at("2026-11-20"), validate=False)
    assert report.servers == [] and report.summary["compliance_pct"] is None
    write_compliance_report(tmp_path, report)
    assert "No sealed run yet" in (tmp_path / "compliance" / "compliance.html").read_text()


def test_outputs_written(history):
    report = build_compliance_report(history, as_of=at("2026-11-20"), validate=False)
    written = write_compliance_report(history, report)
    folder = history / "compliance"
    assert set(written) == {"compliance.json", "compliance.csv", "compliance_runs.csv", "compliance.html"}
    rows = list(csv.DictReader(io.StringIO((folder / "compliance.csv").read_text(), newline="")))
    assert [row["server_id"] for row in rows] == ["va1a", "va1b", "va1c", "va1new", "va1old"]
    assert rows[0]["status"] == "compliant" and rows[2]["days_since_success"] == ""
    stored = json.loads((folder / "compliance.json").read_text())
    assert stored["summary"]["compliance_pct"] == 50.0 and stored["policy_days"] == 35
    html = (folder / "compliance.html").read_text()
    assert 'data-metric="compliance_pct">50.0<' in html
    assert html.index("Non-compliant servers (2)") < html.index("Compliant servers (2)")
    assert html.index("Compliant servers (2)") < html.index("Not patchable servers (1)")
    assert html.count('<tr data-server-id="') == 5  # each server once (issue 10: listed twice)
    assert "<script" not in html


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="policy_days must be a non-negative int"):
        build_compliance_report(tmp_path, policy_days=-1, validate=False)
    with pytest.raises(ValueError, match="as_of must be timezone-aware"):
        build_compliance_report(tmp_path, as_of=datetime(2026, 11, 20), validate=False)


DRY = {"va1a": "planned_dry_run", "va1b": "planned_dry_run", "va1old": "skipped_unsupported_os",
       "va1new": "planned_dry_run"}  # fmt: skip


def test_a_dry_run_between_two_real_runs_changes_no_verdict(tmp_path):
    """Issue 10: a dry run replaced va1b's last real outcome (failed) and counted as a run."""
    with_dry, without = tmp_path / "with_dry", tmp_path / "without"
    first = {"va1a": "patched", "va1b": "failed", "va1old": "skipped_unsupported_os"}
    second = {"va1a": "failed", "va1b": "patched", "va1old": "skipped_unsupported_os"}
    for base in (with_dry, without):
        seal(base, "2026-10-13", first)
    before = build_compliance_report(with_dry, as_of=at("2026-10-25"), validate=False)
    dry_id = seal(with_dry, "2026-10-20", DRY, dry_run=True)
    after = build_compliance_report(with_dry, as_of=at("2026-10-25"))
    assert after.servers == before.servers  # no verdict, last state or server changed
    assert by_id(after)["va1b"]["last_state"] == "failed" and "va1new" not in by_id(after)
    assert after.summary["runs_included"] == 1 and after.summary["dry_runs"] == 1
    assert [run["run_id"] for run in after.dry_runs] == [dry_id]
    assert after.dry_runs[0]["by_state"]["planned_dry_run"] == 3
    assert after.validation["success"], after.validation["failed"]

    for base in (with_dry, without):
        seal(base, "2026-11-10", second)
    real_only = build_compliance_report(without, as_of=at("2026-11-20"), validate=False)
    both = build_compliance_report(with_dry, as_of=at("2026-11-20"), validate=False)
    assert both.servers == real_only.servers and both.runs == real_only.runs
    assert both.summary == real_only.summary | {"dry_runs": 1}

    write_compliance_report(with_dry, both)
    lines = list(csv.reader(io.StringIO((with_dry / "compliance" / "compliance_runs.csv").read_text())))
    assert [line[0] for line in lines if line[2] == "dry_run"] == [dry_id]
    assert [line[2] for line in lines[1:]].count("included") == 2
    html = (with_dry / "compliance" / "compliance.html").read_text()
    assert f'data-dry-run-id="{dry_id}"' in html and 'data-metric="dry_runs">1<' in html
    assert f'data-run-id="{dry_id}"' not in html  # not in the trend


def test_trend_labels_are_the_runs_start_and_stay_unique(tmp_path):
    """Issue 10: run ids were clipped at the chart's left edge; two runs in one minute stay apart."""
    seal(tmp_path, "2026-11-10", {"va1a": "patched"})
    twin = make_run("manual__twin", started_at="2026-11-10T02:00:30Z", ended_at="2026-11-10T02:40:00Z")
    write_evidence_pack(tmp_path, build_audit_document([make_row("va1a", "failed")], twin), PASSED)
    report = build_compliance_report(tmp_path, as_of=at("2026-11-20"), validate=False)
    from include.reporting.compliance_html import build_compliance_page

    page = build_compliance_page(report)
    labels = [bar.label for bar in page.charts[0].bars]
    assert labels == ["2026-11-10 02:00", "2026-11-10 02:00 (2)"]
    chart = page.charts[0]
    assert chart.label_x >= 8 * len(labels[1])  # room for the whole label left of the bars
    assert chart.bars[0].segments[0].x > chart.label_x
