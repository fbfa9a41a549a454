"""Evidence packs: layout, manifest hashes, once-only sealing, the chain, and crash recovery."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from audit_samples import fleet_rows, make_run

from include.reporting.audit_document import SCHEMA_VERSION, build_audit_document
from include.reporting.evidence_pack import (
    PACK_FILES,
    EvidencePackError,
    asset_extra,
    find_pack,
    raise_if_invalid,
    read_chain,
    safe_run_id,
    write_evidence_pack,
)
from include.reporting.validation import AuditValidationError

PASSED = {"suite": "audit", "success": True, "evaluated": 1, "failed": [], "checks": []}
FAILED = {
    "suite": "audit",
    "success": False,
    "evaluated": 1,
    "failed": ["unique_server_id"],
    "checks": [{"name": "unique_server_id", "description": "d", "success": False}],
}
NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


def document(run_id: str = "manual__2026-11-27T14:00:00+00:00", **run):
    return build_audit_document(fleet_rows(), make_run(run_id, **run))


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_safe_run_id_is_readable_and_path_safe():
    assert safe_run_id("manual__2026-11-27T14:00:00+00:00") == "manual__2026-11-27T14-00-00_00-00"
    assert safe_run_id("../etc/passwd") == "_._etc_passwd"
    assert "/" not in safe_run_id("a/b") and safe_run_id("a b") == "a_b"
    with pytest.raises(ValueError, match="run_id must be a non-empty string"):
        safe_run_id("")


def test_pack_layout_and_manifest_hashes(tmp_path):
    pack = write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    folder = tmp_path / "runs" / "manual__2026-11-27T14-00-00_00-00"
    assert pack.path == folder and pack.created
    assert sorted(p.name for p in folder.iterdir()) == sorted([*PACK_FILES, "manifest.json"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["run_id"] == "manual__2026-11-27T14:00:00+00:00"
    assert manifest["created_at"] == "2026-11-27T15:00:00Z"
    assert manifest["previous_manifest"] is None
    for name in PACK_FILES:
        assert manifest["files"][name] == {
            "sha256": sha(folder / name),
            "bytes": (folder / name).stat().st_size,
        }
    assert pack.manifest_sha256 == sha(folder / "manifest.json")
    assert json.loads((folder / "audit.json").read_text()) == document()
    assert (
        'data-audit-sha256="' + manifest["files"]["audit.json"]["sha256"]
        in (folder / "report.html").read_text()
    )


def test_second_pack_links_to_the_first_and_chain_lists_both(tmp_path):
    first = write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    second = write_evidence_pack(tmp_path, document("scheduled__2026-12-08T02:00:00+00:00"), PASSED, now=NOW)
    assert second.manifest["previous_manifest"] == {"run_id": first.run_id, "sha256": first.manifest_sha256}
    chain = read_chain(tmp_path)
    assert [entry["run_id"] for entry in chain] == [first.run_id, second.run_id]
    assert chain[1]["manifest_sha256"] == sha(second.path / "manifest.json")


def test_sealed_pack_is_never_overwritten(tmp_path):
    first = write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    before = {p.name: p.read_bytes() for p in first.path.iterdir()}
    changed = document(triggered_by="mallory")
    again = write_evidence_pack(tmp_path, changed, FAILED, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert not again.created
    assert again.manifest_sha256 == first.manifest_sha256
    assert {p.name: p.read_bytes() for p in first.path.iterdir()} == before
    assert len(read_chain(tmp_path)) == 1  # a retry adds no second chain entry


def test_incomplete_pack_is_completed(tmp_path):
    folder = tmp_path / "runs" / safe_run_id("manual__2026-11-27T14:00:00+00:00")
    folder.mkdir(parents=True)
    (folder / "audit.json").write_text("half-written")
    pack = write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    assert pack.created
    assert json.loads((folder / "audit.json").read_text())["schema_version"] == SCHEMA_VERSION
    assert pack.manifest["files"]["audit.json"]["sha256"] == sha(folder / "audit.json")


def test_crash_between_seal_and_index_is_healed_by_the_retry(tmp_path):
    first = write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    second = write_evidence_pack(tmp_path, document("scheduled__2026-12-08T02:00:00+00:00"), PASSED, now=NOW)
    chain_path = tmp_path / "chain.json"
    chain = json.loads(chain_path.read_text())
    chain["packs"] = chain["packs"][:1]  # as if the worker died right after sealing the second pack
    chain_path.write_text(json.dumps(chain))
    retried = find_pack(tmp_path, second.run_id)
    assert retried is not None and not retried.created
    assert [e["run_id"] for e in read_chain(tmp_path)] == [first.run_id, second.run_id]


def test_sealing_refuses_to_start_a_new_chain_over_existing_packs(tmp_path):
    write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    (tmp_path / "chain.json").unlink()
    with pytest.raises(EvidencePackError, match=r"chain.json is missing but sealed packs exist"):
        write_evidence_pack(tmp_path, document("scheduled__2026-12-08T02:00:00+00:00"), PASSED, now=NOW)


def test_run_ids_colliding_on_one_folder_are_caught(tmp_path):
    write_evidence_pack(tmp_path, document("manual__a:b"), PASSED, now=NOW)
    with pytest.raises(EvidencePackError, match="holds run 'manual__a:b', not 'manual__a-b'"):
        write_evidence_pack(tmp_path, document("manual__a-b"), PASSED, now=NOW)


def test_asset_extra_and_validation_outcome(tmp_path):
    pack = write_evidence_pack(tmp_path, document(), FAILED, now=NOW)
    extra = asset_extra(pack)
    json.dumps(extra)
    assert extra["run_id"] == pack.run_id
    assert extra["manifest"].endswith("manifest.json") and extra["manifest_sha256"] == pack.manifest_sha256
    assert extra["by_state"]["failed"] == 1 and extra["total"] == 9
    assert extra["validation_success"] is False
    with pytest.raises(AuditValidationError, match="audit validation failed: unique_server_id"):
        raise_if_invalid(pack)
    assert find_pack(tmp_path, "never-ran") is None
