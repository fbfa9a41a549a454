"""compliance_report with `dag.test()` on a real metadata DB: the anchor comes from Airflow's own
patch_audit asset events (I10), through the real task context, not from the reports storage."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PASSED = {"suite": "audit", "success": True, "evaluated": 0, "failed": [], "checks": []}


def _seal(base: Path, run_id: str):
    sys.path.insert(0, str(ROOT / "tests" / "reporting"))
    from audit_samples import fleet_rows, make_run

    from include.reporting.audit_document import build_audit_document
    from include.reporting.evidence_pack import write_evidence_pack

    return write_evidence_pack(base, build_audit_document(fleet_rows(), make_run(run_id)), PASSED)


def _announce(pack) -> None:
    """What the audit task's outlet does: a patch_audit event whose extra carries the hash."""
    from airflow.assets.manager import AssetManager
    from airflow.utils.session import create_session

    from include.assets import PATCH_AUDIT
    from include.reporting.evidence_pack import asset_extra

    with create_session() as session:
        AssetManager().register_asset_change(asset=PATCH_AUDIT, extra=asset_extra(pack), session=session)


def _run_compliance() -> str:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag("compliance_report")
    return dag.test().state


def test_a_removed_newest_pack_fails_the_report_against_the_asset_event(airflow_db, tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    monkeypatch.setenv("PATCHFLOW_REPORTS", str(reports))
    first = _seal(reports, "manual__anchor-1")
    _announce(first)  # the newest event is this test's, whatever other tests of the session sealed
    state = _run_compliance()  # registers the DAG and its asset
    assert state == "success"
    newest = _seal(reports, "manual__anchor-2")
    _announce(first)
    _announce(newest)
    state = _run_compliance()
    stored = json.loads((reports / "compliance" / "compliance.json").read_text())
    assert state == "success" and stored["evidence"]["anchor"]["status"] == "matches"
    assert stored["evidence"]["anchor"]["run_id"] == "manual__anchor-2"

    shutil.rmtree(newest.path)
    chain = json.loads((reports / "chain.json").read_text())
    chain["packs"].pop()
    (reports / "chain.json").write_text(json.dumps(chain))
    state = _run_compliance()
    stored = json.loads((reports / "compliance" / "compliance.json").read_text())
    assert state == "failed" and stored["evidence"]["anchor"]["status"] == "not_found"
    assert 'data-anchor="not_found"' in (reports / "compliance" / "compliance.html").read_text()
