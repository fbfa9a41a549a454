"""verify_chain and the CLI: each kind of tampering is detected and named; a clean chain passes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_samples import fleet_rows, make_run

from include.reporting.__main__ import main
from include.reporting.audit_document import build_audit_document
from include.reporting.evidence_pack import safe_run_id, write_evidence_pack
from include.reporting.verify import verify_chain

PASSED = {"suite": "audit", "success": True, "evaluated": 0, "failed": [], "checks": []}
RUN_IDS = [
    "scheduled__2026-10-13T02:00:00+00:00",
    "scheduled__2026-11-10T02:00:00+00:00",
    "manual__2026-11-27T14:00:00+00:00",
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def base(tmp_path):
    for run_id in RUN_IDS:
        document = build_audit_document(fleet_rows(), make_run(run_id))
        write_evidence_pack(tmp_path, document, PASSED, now=datetime(2026, 11, 27, tzinfo=UTC))
    return tmp_path


def pack(base, index: int) -> Path:
    return base / "runs" / safe_run_id(RUN_IDS[index])


def test_clean_chain_verifies(base, capsys):
    verdict = verify_chain(base)
    assert verdict.ok and verdict.packs_checked == 3 and not verdict.warnings
    assert main(["verify", str(base)]) == 0
    assert "VERIFIED" in capsys.readouterr().out


def test_modified_file_is_named(base, capsys):
    audit = pack(base, 1) / "audit.json"
    audit.write_text(audit.read_text().replace('"patched"', '"failed"', 1))
    verdict = verify_chain(base)
    name = f"runs/{safe_run_id(RUN_IDS[1])}/audit.json"
    assert verdict.first_broken.startswith(f"{name}: modified")
    assert main(["verify", str(base)]) == 1
    out = capsys.readouterr().out
    assert f"TAMPERED: {name}: modified" in out and "FAILED: 1 problem(s)" in out


def test_rewritten_manifest_breaks_the_next_link(base):
    """An attacker edits a file, re-hashes it into the manifest and fixes chain.json: still caught."""
    folder = pack(base, 0)
    (folder / "audit.csv").write_text("server_id\r\n")
    manifest = json.loads((folder / "manifest.json").read_text())
    data = (folder / "audit.csv").read_bytes()
    import hashlib

    manifest["files"]["audit.csv"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    raw = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (folder / "manifest.json").write_bytes(raw)
    chain = json.loads((base / "chain.json").read_text())
    chain["packs"][0]["manifest_sha256"] = hashlib.sha256(raw).hexdigest()
    (base / "chain.json").write_text(json.dumps(chain))
    verdict = verify_chain(base)
    assert not verdict.ok
    assert verdict.first_broken.startswith(f"chain link #2 (run {RUN_IDS[1]}): broken link")


def test_deleted_pack_in_the_middle(base):
    for item in pack(base, 1).iterdir():
        item.unlink()
    pack(base, 1).rmdir()
    verdict = verify_chain(base)
    assert (
        verdict.first_broken
        == f"runs/{safe_run_id(RUN_IDS[1])}/manifest.json: missing (pack deleted or unsealed)"
    )


def test_pack_removed_from_chain_index(base):
    chain = json.loads((base / "chain.json").read_text())
    del chain["packs"][1]
    (base / "chain.json").write_text(json.dumps(chain))
    verdict = verify_chain(base)
    assert any("broken link" in problem for problem in verdict.problems)
    assert any("sealed pack missing from chain.json" in problem for problem in verdict.problems)


def test_added_file_and_deleted_file(base):
    (pack(base, 2) / "extra.html").write_text("<p>forged</p>")
    (pack(base, 0) / "validation.json").unlink()
    problems = verify_chain(base).problems
    assert f"runs/{safe_run_id(RUN_IDS[0])}/validation.json: missing (listed in the manifest)" in problems
    assert (
        f"runs/{safe_run_id(RUN_IDS[2])}/extra.html: not listed in the manifest (added afterwards)"
        in problems
    )


def test_incomplete_pack_is_only_a_warning(base):
    (base / "runs" / "manual__crashed").mkdir()
    (base / "runs" / "manual__crashed" / "audit.json").write_text("{")
    verdict = verify_chain(base)
    assert verdict.ok
    assert verdict.warnings == ["runs/manual__crashed: incomplete pack (no manifest), ignored"]


def test_empty_location_verifies_and_missing_location_is_usage_error(tmp_path, capsys):
    assert verify_chain(tmp_path).ok and verify_chain(tmp_path).packs_checked == 0
    assert main(["verify", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_module_entry_point(base):
    (pack(base, 2) / "report.html").write_text("<html>forged</html>")
    result = subprocess.run(
        [sys.executable, "-m", "include.reporting", "verify", str(base)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert f"runs/{safe_run_id(RUN_IDS[2])}/report.html: modified" in result.stdout


def test_object_storage_path_location(tmp_path, capsys):
    """Packs, chain and verification through Airflow's ObjectStoragePath (file://, like s3://)."""
    from airflow.sdk import ObjectStoragePath

    base = ObjectStoragePath(f"file://{tmp_path}/reports")
    for run_id in RUN_IDS[:2]:
        write_evidence_pack(base, build_audit_document(fleet_rows(), make_run(run_id)), PASSED)
    assert (tmp_path / "reports" / "runs" / safe_run_id(RUN_IDS[1]) / "manifest.json").exists()
    assert verify_chain(base).packs_checked == 2
    assert main(["verify", f"file://{tmp_path}/reports"]) == 0
    (tmp_path / "reports" / "runs" / safe_run_id(RUN_IDS[0]) / "audit.csv").write_text("x")
    assert main(["verify", f"file://{tmp_path}/reports"]) == 1
    assert "audit.csv: modified" in capsys.readouterr().out
