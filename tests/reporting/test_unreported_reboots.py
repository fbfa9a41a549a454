"""Reboots are not reported by the patching service: the evidence says so instead of a number (I8)."""

from __future__ import annotations

import csv
import io

from audit_samples import fleet_rows, make_run

from include.reporting.audit_document import audit_csv, build_audit_document, summarize
from include.reporting.html_report import render_report_html


def unreported(rows: list[dict]) -> list[dict]:
    return [row | {"reboots": None, "attempts": 3 if row["execution_id"] else None} for row in rows]


def test_the_audit_carries_null_reboots_and_the_observed_attempts():
    document = build_audit_document(unreported(fleet_rows()), make_run())
    assert document["summary"]["reboots"] is None
    assert {row["reboots"] for row in document["servers"]} == {None}
    assert {row["attempts"] for row in document["servers"]} == {3, None}
    table = list(csv.DictReader(io.StringIO(audit_csv(document))))
    assert {row["reboots"] for row in table} == {""} and "3" in {row["attempts"] for row in table}


def test_a_reported_count_is_still_summed():
    rows = unreported(fleet_rows())
    rows[0]["reboots"] = 2
    assert summarize(rows)["reboots"] == 2


def test_the_html_report_says_not_reported():
    document = build_audit_document(unreported(fleet_rows()), make_run())
    html = render_report_html(document, None)
    assert 'data-metric="reboots" title="not reported by the patching service">n/r<' in html


def test_validation_accepts_null_reboots_and_catches_a_row_claiming_some():
    from include.reporting.validation import validate_audit

    rows = unreported(fleet_rows())
    document = build_audit_document(rows, make_run())
    verdict = validate_audit(document, inventory_count=len(rows))
    assert verdict["success"], [c for c in verdict["checks"] if not c["success"]]
    document["servers"][0]["reboots"] = 4  # a row claims reboots the summary says nobody reported
    verdict = validate_audit(document, inventory_count=len(rows))
    (check,) = [c for c in verdict["checks"] if c["name"] == "reboots_equals_summary"]
    assert not check["success"]
