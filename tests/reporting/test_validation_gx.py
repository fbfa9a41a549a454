"""Great Expectations validation of audits and compliance reports (the one GX-importing module).

Each deliberately broken audit must be caught by the check with that name.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from audit_samples import fleet_rows, make_row, make_run

from include.reporting.audit_document import build_audit_document, summarize
from include.reporting.compliance import build_compliance_report, listing
from include.reporting.compliance_checks import validate_compliance
from include.reporting.evidence_pack import build_evidence_pack, raise_if_invalid
from include.reporting.validation import AuditValidationError, validate_audit

ALL_CHECKS = {
    "server_count_equals_inventory",
    "unique_server_id",
    "server_id_present",
    "state_in_closed_set",
    "execution_id_format",
    "execution_id_present_when_completed",
    "reason_when_execution_missing",
    "no_execution_id_when_not_attempted",
    "maintenance_in_closed_set",
    "left_in_maintenance_says_why",
    "timestamps_iso8601",
    "ended_at_iso8601",
    "observed_at_iso8601",
    "completion_observed",
    "ended_not_before_started",
    "no_kernel_or_nss_on_rhel",
    "total_equals_summary",
    "patches_installed_equals_summary",
    "patches_failed_equals_summary",
    "reboots_equals_summary",
    "breakdowns_equal_summary",
    "revert_uses_a_snapshot_of_this_run",
    "no_snapshot_says_why",
    "snapshot_in_closed_set",
    "snapshot_fate_in_closed_set",
}


def audit(rows=None, **run):
    return build_audit_document(fleet_rows() if rows is None else rows, make_run(**run))


def row_of(document, server_id):
    return next(row for row in document["servers"] if row["server_id"] == server_id)


def resummarize(document):
    document["summary"] = summarize(document["servers"])
    return document


def kernel(document, server_id="va1demoweb01", name="kernel-2.6.32-754.35.1"):
    row_of(document, server_id)["patches"].append(
        {
            "name": name,
            "kb": None,
            "result_code": "0",
            "status": "completed",
            "start_time": None,
            "end_time": None,
        }
    )
    return document


def test_clean_audit_passes_every_check():
    result = validate_audit(audit(), inventory_count=9)
    assert result["success"] is True and result["failed"] == []
    assert {check["name"] for check in result["checks"]} == ALL_CHECKS
    assert result["evaluated"] == len(ALL_CHECKS)
    json.dumps(result)  # goes into validation.json as is


def _duplicate(d):
    d["servers"].append(copy.deepcopy(d["servers"][0]))
    return resummarize(d), 10


def _unknown_state(d):
    row_of(d, "va1demoapp01")["state"] = "half_patched"
    return resummarize(d), 9


def _bad_execution_id(d):
    row_of(d, "va1demowin01")["execution_id"] = "va1-12"
    return d, 9


def _end_before_start(d):
    row_of(d, "va1demowin01")["ended_at"] = "2026-11-27T13:59:59Z"
    return d, 9


def _totals_mismatch(d):
    d["summary"]["patches_installed"] += 5
    return d, 9


def _by_state_mismatch(d):
    d["summary"]["by_state"]["patched"] += 1
    return d, 9


def _dropped_server(d):
    d["servers"].pop()
    return resummarize(d), 9


def _patched_without_execution(d):
    row_of(d, "va1demoweb02")["execution_id"] = None
    return d, 9


def _skipped_with_execution(d):
    row_of(d, "uc1demoold01")["execution_id"] = "UC1-100001"
    return d, 9


def _failed_unexplained(d):
    row = row_of(d, "va1demowin01")
    row.update(execution_id=None, reason="  ")
    return d, 9


def _left_on_unexplained(d):
    row_of(d, "va1demowin01").update(maintenance="left_on", maintenance_note=" ")
    return resummarize(d), 9


def _unknown_maintenance(d):
    row_of(d, "va1demowin01")["maintenance"] = "probably_off"
    return resummarize(d), 9


def _maintenance_count_mismatch(d):
    d["summary"]["by_maintenance"]["left_on"] += 1
    return d, 9


def _reverted_to_someone_elses_snapshot(d):
    row_of(d, "va1demowin01").update(state="reverted", snapshot="not_taken", snapshot_restored=True)
    return resummarize(d), 9


def _reverted_but_not_restored(d):
    row_of(d, "va1demowin01").update(
        state="reverted", snapshot="confirmed", snapshot_name="2026-11-27.13:00:00", snapshot_restored=False
    )
    return resummarize(d), 9


def _no_snapshot_unexplained(d):
    row_of(d, "va1demowin01").update(state="skipped_no_snapshot", execution_id=None, snapshot="not_taken")
    return resummarize(d), 9


def _unknown_snapshot_fate(d):
    row_of(d, "va1demoweb01").update(snapshot="confirmed", snapshot_fate="lost")
    return d, 9


def _bad_timestamp(d):
    row_of(d, "va1demoweb01")["started_at"] = "27/11/2026 14:00"
    return d, 9


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        (_duplicate, {"unique_server_id"}),
        (_unknown_state, {"state_in_closed_set"}),
        (lambda d: (kernel(d), 9), {"no_kernel_or_nss_on_rhel"}),
        (lambda d: (kernel(d, "va1demoweb02", "nss-softokn-3.44"), 9), {"no_kernel_or_nss_on_rhel"}),
        (_bad_execution_id, {"execution_id_format"}),
        (_end_before_start, {"ended_not_before_started"}),
        (_totals_mismatch, {"patches_installed_equals_summary"}),
        (_by_state_mismatch, {"breakdowns_equal_summary"}),
        (_dropped_server, {"server_count_equals_inventory"}),
        (_patched_without_execution, {"execution_id_present_when_completed"}),
        (_skipped_with_execution, {"no_execution_id_when_not_attempted"}),
        (_failed_unexplained, {"reason_when_execution_missing"}),
        (_bad_timestamp, {"timestamps_iso8601"}),
        (_left_on_unexplained, {"left_in_maintenance_says_why"}),
        (_unknown_maintenance, {"maintenance_in_closed_set"}),
        (_maintenance_count_mismatch, {"breakdowns_equal_summary"}),
        (_reverted_to_someone_elses_snapshot, {"revert_uses_a_snapshot_of_this_run"}),
        (_reverted_but_not_restored, {"revert_uses_a_snapshot_of_this_run"}),
        (_no_snapshot_unexplained, {"no_snapshot_says_why"}),
        (_unknown_snapshot_fate, {"snapshot_fate_in_closed_set"}),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) and value.__name__ != "<lambda>" else None,
)
def test_broken_audit_is_caught_by_name(breaker, expected):
    document, inventory = breaker(audit())
    result = validate_audit(document, inventory_count=inventory)
    assert result["success"] is False
    assert set(result["failed"]) == expected


def test_failing_check_names_the_offending_server():
    result = validate_audit(kernel(audit()), inventory_count=9)
    check = next(c for c in result["checks"] if c["name"] == "no_kernel_or_nss_on_rhel")
    assert check["unexpected_rows"] == ["va1demoweb01"]
    assert check["unexpected_sample"] == ["kernel-2.6.32-754.35.1"]


def test_kernel_patch_on_windows_is_not_flagged():
    document = kernel(audit(), "va1demowin01", "kernel32-hotfix")
    assert validate_audit(document, inventory_count=9)["success"] is True


def test_a_reverted_server_with_this_runs_restored_snapshot_is_accepted():
    row = make_row("uc1r01", "reverted", reason="1 of 1 patches failed; reverted")
    row |= {"snapshot": "confirmed", "snapshot_name": "2026-11-27.13:00:00", "snapshot_restored": True}
    row |= {"snapshot_fate": "kept", "snapshot_created_at": "2026-11-27T13:00:00Z", "snapshot_note": ""}
    assert validate_audit(audit([row]), inventory_count=1)["success"] is True


def test_timed_out_without_execution_but_with_reason_is_accepted():
    rows = [make_row("uc1t01", "timed_out", execution_id=None, reason="execution never appeared")]
    assert validate_audit(audit(rows), inventory_count=1)["success"] is True


def test_empty_inventory_and_bad_arguments():
    assert validate_audit(audit([]), inventory_count=0)["success"] is True
    with pytest.raises(ValueError, match="inventory_count must be a non-negative int"):
        validate_audit(audit(), inventory_count="9")


def test_failed_validation_is_sealed_then_raised(tmp_path):
    rows = fleet_rows()
    rows.append(copy.deepcopy(rows[0]))  # duplicate server
    pack = build_evidence_pack(tmp_path, rows, make_run(), inventory_count=9)
    stored = json.loads((pack.path / "validation.json").read_text())
    assert stored["success"] is False
    assert set(stored["failed"]) == {"unique_server_id", "server_count_equals_inventory"}
    assert 'data-validation="failed"' in (pack.path / "report.html").read_text()
    with pytest.raises(AuditValidationError, match="unique_server_id") as raised:
        raise_if_invalid(pack)
    assert raised.value.result["success"] is False
    # the Airflow retry returns the sealed pack (no second validation, no rewrite)
    again = build_evidence_pack(tmp_path, fleet_rows(), make_run(), inventory_count=9)
    assert not again.created and again.manifest_sha256 == pack.manifest_sha256


def test_compliance_report_validates(tmp_path):
    for day in ("2026-10-13", "2026-11-10"):
        times = {"started_at": f"{day}T02:00:00Z", "ended_at": f"{day}T03:00:00Z"}
        rows = [
            make_row("va1a", "patched", **times),
            make_row("va1b", "failed", **times),
            make_row("va1c", "skipped_unsupported_os"),
        ]
        build_evidence_pack(tmp_path, rows, make_run(f"scheduled__{day}", **times), inventory_count=3)
    report = build_compliance_report(tmp_path, as_of=datetime(2026, 11, 20, tzinfo=UTC))
    assert report.validation["success"] is True, report.validation["failed"]
    report.raise_if_invalid()


AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)
RUNS = [
    {"run_id": "r0", "started_at": "2026-10-10T02:00:00Z", "dry_run": False},
    {"run_id": "r1", "started_at": "2026-11-17T02:00:00Z", "dry_run": False},
]


def verdict(server_id: str, **overrides):
    """A compliant server patched by its latest run, 3 days before AS_OF."""
    return {
        "server_id": server_id,
        "status": "compliant",
        "days_since_success": 3,
        "last_success_run_id": "r1",
        "last_state": "patched",
        "last_seen_run_id": "r1",
        "last_seen_at": "2026-11-17T03:00:00Z",
    } | overrides


def test_broken_compliance_rows_are_caught_by_name():
    good = verdict("va1a")
    servers = [
        good,
        dict(good),  # duplicate
        verdict("va1b", status="green", last_state="failed"),
        verdict("va1c", days_since_success=-2),
        verdict("va1d", days_since_success=90),
        verdict("va1e", last_success_run_id=None),
    ]
    result = validate_compliance(
        [("compliant", [s for s in servers if s["status"] == "compliant"]), ("green", [servers[2]])],
        expected_servers=5,
        policy_days=35,
        as_of=AS_OF,
        runs=RUNS,
    )
    assert set(result["failed"]) == {
        "server_count_equals_fleet",
        "unique_server_id",
        "status_in_closed_set",
        "days_since_not_negative",
        "compliant_within_policy",
        "compliant_has_success",
    }
    with pytest.raises(AuditValidationError, match="compliance report validation failed"):
        raise AuditValidationError(result, what="compliance report")


def test_the_skew_defect_is_caught_a_success_listed_as_never_patched():
    """What the replay produced when it compared the API's fast clock with ours (issue 10)."""
    skewed = verdict(
        "va1a",
        status="non_compliant",
        days_since_success=None,
        last_success_run_id=None,
        explanation="never successfully patched",
    )
    failed_long_ago = verdict("va1b", status="non_compliant", last_state="failed", days_since_success=None)
    patched_long_ago = verdict("va1c", status="non_compliant", days_since_success=41, last_seen_run_id="r0")
    listed = listing([skewed, failed_long_ago, patched_long_ago])
    result = validate_compliance(listed, expected_servers=3, policy_days=35, as_of=AS_OF, runs=RUNS)
    assert result["failed"] == ["patched_by_latest_run_is_compliant"]
    check = next(c for c in result["checks"] if c["name"] == "patched_by_latest_run_is_compliant")
    assert check["unexpected_rows"] == ["va1a"]  # not the failed one, not the one patched 41 days ago


def test_duplicate_listing_dry_run_outcome_and_counted_dry_run_are_caught_by_name():
    """The other issue-10 defects: a server in two sections, a plan as last outcome, a counted dry run."""
    twice = verdict("va1a", status="non_compliant", last_state="failed", last_success_run_id=None)
    planned = verdict("va1b", last_state="planned_dry_run")
    result = validate_compliance(
        [("non_compliant", [twice]), ("compliant", [twice, planned])],
        expected_servers=2,
        policy_days=35,
        as_of=AS_OF,
        runs=[*RUNS, {"run_id": "plan", "started_at": "2026-11-18T02:00:00Z", "dry_run": True}],
    )
    assert set(result["failed"]) == {
        "server_count_equals_fleet",
        "unique_server_id",
        "no_dry_run_outcome",
        "listed_in_its_status_section",
        "dry_runs_not_counted",
    }
    dry = next(c for c in result["checks"] if c["name"] == "dry_runs_not_counted")
    assert dry["unexpected_sample"] == ["plan"]
