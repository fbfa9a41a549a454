"""The reports pages served inside the Airflow API server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reporting"))
from audit_samples import HOSTILE, fleet_rows, make_run

from include.reporting.audit_document import build_audit_document
from include.reporting.evidence_pack import safe_run_id, write_evidence_pack
from patchflow.web import create_app

RUN_ID = "manual__2026-11-27T14:00:00+00:00"


@pytest.fixture
def client(tmp_path):
    document = build_audit_document(fleet_rows(), make_run(RUN_ID))
    write_evidence_pack(tmp_path, document, {"success": True, "checks": [], "failed": []})
    return TestClient(create_app(tmp_path, authenticate=False))


def test_index_lists_sealed_packs_with_links(client):
    page = client.get("/").text
    assert RUN_ID in page
    assert f'href="runs/{safe_run_id(RUN_ID)}/report.html"' in page


def test_report_is_served_by_raw_or_safe_run_id(client):
    for run in (RUN_ID, safe_run_id(RUN_ID)):
        resp = client.get(f"/runs/{run}/report.html")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/html")
        assert HOSTILE not in resp.text  # escaped, never raw


def test_only_pack_files_of_sealed_runs_are_served(client):
    assert client.get(f"/runs/{RUN_ID}/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/runs/unknown_run/report.html").status_code == 404
    assert client.get(f"/runs/{RUN_ID}/secrets.txt").status_code == 404
    assert client.get("/compliance/compliance.html").status_code == 404


def test_an_empty_location_says_so(tmp_path):
    page = TestClient(create_app(tmp_path, authenticate=False)).get("/").text
    assert "No evidence pack has been sealed yet" in page


def test_the_app_requires_airflow_authentication_by_default(tmp_path):
    app = create_app(tmp_path)
    assert app.router.dependencies, "reports must sit behind Airflow's authentication"
