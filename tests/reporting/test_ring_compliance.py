"""Compliance per ring: a ring's servers (its latest run's scope), judged on every verified run."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from audit_samples import make_row, make_run

from include.reporting.audit_document import build_audit_document
from include.reporting.compliance import build_compliance_report
from include.reporting.evidence_pack import write_evidence_pack
from include.reporting.ring_compliance import update_ring_reports

PASSED = {"suite": "audit", "success": True, "evaluated": 0, "failed": [], "checks": []}
AS_OF = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)


def seal(base, day: str, dag_id: str, states: dict[str, str], ring: str | None = None) -> None:
    times = {"started_at": f"{day}T02:00:00Z", "ended_at": f"{day}T03:00:00Z"}
    rows = []
    for server_id, state in states.items():
        row = make_row(server_id, state)
        if row["started_at"]:
            row.update(times, observed_at=times["ended_at"])
        rows.append(row)
    params = {"dry_run": False} | ({"ring": ring, "patch_cycle": "2026-12"} if ring else {})
    run = make_run(f"{dag_id}__{day}", dag_id=dag_id, params=params, **times)
    write_evidence_pack(base, build_audit_document(rows, run), PASSED, now=datetime.now(UTC))


def test_each_ring_reports_its_own_servers_with_verdicts_from_every_run(tmp_path):
    # dev patched a and failed b; production's scope is c and d; patch_fleet later patched b and d
    seal(
        tmp_path,
        "2026-12-10",
        "patch_ring_dev",
        {"a": "patched", "b": "failed", "c": "skipped_filtered"},
        "dev",
    )
    seal(tmp_path, "2026-12-11", "patch_fleet", {"b": "patched", "d": "patched"})
    seal(
        tmp_path,
        "2026-12-12",
        "patch_ring_production",
        {"a": "skipped_filtered", "c": "failed", "d": "not_attempted"},
        "production",
    )
    reports = update_ring_reports(tmp_path, ["dev", "production", "staging"], as_of=AS_OF, validate=False)
    status = {ring: {s["server_id"]: s["status"] for s in r.servers} for ring, r in reports.items()}
    assert status == {
        "dev": {"a": "compliant", "b": "compliant"},  # b: patched by patch_fleet afterwards
        "production": {"c": "non_compliant", "d": "compliant"},
        "staging": {},  # never ran
    }
    assert reports["production"].summary["compliance_pct"] == 50.0
    written = json.loads((tmp_path / "compliance" / "rings" / "dev" / "compliance.json").read_text())
    assert {s["server_id"] for s in written["servers"]} == {"a", "b"}
    assert (tmp_path / "compliance" / "rings" / "production" / "compliance.html").exists()
    fleet = build_compliance_report(tmp_path, as_of=AS_OF, validate=False)
    assert {s["server_id"] for s in fleet.servers} == {"a", "b", "c", "d"}  # the fleet view is unchanged
