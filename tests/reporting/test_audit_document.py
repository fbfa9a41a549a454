"""Audit document and CSV: totals, ordering, CSV quoting and formula-injection guard, input errors."""

from __future__ import annotations

import csv
import io
import json

import pytest
from audit_samples import HOSTILE, make_row

from include.patching.states import ServerState
from include.reporting.audit_document import (
    CSV_COLUMNS,
    AuditDataError,
    audit_csv,
    build_audit_document,
    software_versions,
)


def test_document_shape_sorted_rows_and_summary(rows, run):
    document = build_audit_document(rows, run)
    assert document["schema_version"] == 4  # 2: maintenance columns; 3: observed_at; 4: snapshots
    assert document["run"]["run_id"] == run["run_id"]
    ids = [row["server_id"] for row in document["servers"]]
    assert ids == sorted(ids) and len(ids) == len(rows)
    summary = document["summary"]
    assert summary["total"] == 9
    assert set(summary["by_state"]) == {state.value for state in ServerState}  # zeros included
    assert summary["by_state"]["skipped_filtered"] == 0
    assert summary["by_state"]["patched_no_updates"] == 2
    assert summary["attempted"] == 5  # patched + 2 up to date + failed + timed out
    assert (summary["patches_installed"], summary["patches_failed"], summary["reboots"]) == (2, 1, 1)
    assert summary["by_data_center"]["UC1"]["timed_out"] == 1
    assert summary["by_os_family"]["windows"]["failed"] == 1
    assert sum(summary["by_os_family"]["linux"].values()) == 7
    json.dumps(document)  # JSON-able end to end


def test_attempted_counts_only_states_that_sent_the_package(run):
    rows = [make_row(f"va1s{i:02d}", state) for i, state in enumerate(["patched", "failed", "timed_out"])]
    rows.append(make_row("va1s99", "planned_dry_run"))
    assert build_audit_document(rows, run)["summary"]["attempted"] == 3


def test_maintenance_columns_are_in_the_document_the_csv_and_the_summary(run):
    rows = [
        make_row("va1a", maintenance="left_on", maintenance_note="stopMaintenance refused: rebooting"),
        make_row("va1b", maintenance="released"),
        make_row("va1c", "skipped_unsupported_os", maintenance="not_used"),
    ]
    document = build_audit_document(rows, run)
    assert document["servers"][0]["maintenance_note"] == "stopMaintenance refused: rebooting"
    assert document["summary"]["by_maintenance"] == {
        "not_used": 1,
        "kept_preexisting": 0,
        "released": 1,
        "left_on": 1,
    }
    parsed = {r["server_id"]: r for r in csv.DictReader(io.StringIO(audit_csv(document), newline=""))}
    assert parsed["va1a"]["maintenance"] == "left_on"
    assert parsed["va1a"]["maintenance_note"] == "stopMaintenance refused: rebooting"


def test_a_row_without_the_maintenance_column_is_refused(run):
    row = make_row("va1a")
    del row["maintenance"]
    with pytest.raises(AuditDataError, match="missing field"):
        build_audit_document([row], run)


def test_csv_is_rfc4180_and_guards_formulas(run):
    rows = [
        make_row("va1a", description='comma, "quote" and\nnewline'),
        make_row("va1b", description='=HYPERLINK("http://evil")'),
        make_row("va1c", description="+1", reason="-2", group_name="@SUM(A1)"),
        make_row("va1d", description=HOSTILE),
    ]
    text = audit_csv(build_audit_document(rows, run))
    assert "\r\n" in text
    parsed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(parsed[0]) == list(CSV_COLUMNS)
    by_id = {row["server_id"]: row for row in parsed}
    assert by_id["va1a"]["description"] == 'comma, "quote" and\nnewline'  # round-trips intact
    assert by_id["va1b"]["description"] == '\'=HYPERLINK("http://evil")'
    assert by_id["va1c"]["description"] == "'+1"
    assert by_id["va1c"]["reason"] == "'-2"
    assert by_id["va1c"]["group_name"] == "'@SUM(A1)"
    assert by_id["va1d"]["description"] == HOSTILE  # CSV is not HTML: no escaping needed
    assert by_id["va1a"]["patch_names"] == "openssl-1.0.1e-58;bash-4.1.2-48"
    assert by_id["va1a"]["patches_installed"] == "2"
    assert by_id["va1a"]["started_at"] == "2026-11-27T14:00:00Z"


def test_csv_writes_null_as_empty_cell(run):
    text = audit_csv(build_audit_document([make_row("va1x", "skipped_filtered")], run))
    row = next(csv.DictReader(io.StringIO(text, newline="")))
    assert row["execution_id"] == "" and row["package_id"] == ""


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("state"), r"row #0 \(server_id='va1x'\) is missing field\(s\): state"),
        (lambda r: r.update(reboots="2"), "reboots must be a non-negative int"),
        (lambda r: r.update(patches_failed=-1), "patches_failed must be a non-negative int"),
        (lambda r: r.update(patches="kernel"), "patches must be a list"),
        (lambda r: r.update(patches=[{"kb": "KB1"}]), r"patches\[0\] must be a dict with a string 'name'"),
        (lambda r: r.update(server_id=""), "server_id must be a non-empty string"),
        (lambda r: r.update(description=object()), "not JSON-serialisable"),
    ],
)
def test_bad_rows_are_rejected_naming_row_and_field(run, mutate, message):
    row = make_row("va1x")
    mutate(row)
    with pytest.raises(AuditDataError, match=message):
        build_audit_document([row], run)


def test_bad_run_metadata_is_rejected(run):
    del run["software"]
    with pytest.raises(AuditDataError, match="run metadata is missing field"):
        build_audit_document([], run)
    with pytest.raises(AuditDataError, match="expected a dict"):
        build_audit_document([], ["not", "a", "dict"])


def test_software_versions_reads_installed_distributions():
    versions = software_versions()
    assert versions["apache-airflow"] == "3.3.2"
    assert versions["apache-airflow-providers-smtp"] == "3.2.0"
    assert versions["python"].count(".") == 2
    assert "patchflow" in versions  # "not installed" when the project is not pip-installed


def test_secret_looking_params_are_masked(rows, run):
    run["params"] = {"data_centers": ["VA1"], "api_token": "abc123", "nested": {"Password": "hunter2"}}
    document = build_audit_document(rows, run)
    assert document["run"]["params"] == {
        "data_centers": ["VA1"],
        "api_token": "***",
        "nested": {"Password": "***"},
    }
    assert "hunter2" not in json.dumps(document) and "abc123" not in audit_csv(document)
