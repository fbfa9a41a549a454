"""Evidence packs: layout, manifest hashes, once-only sealing, the chain, and crash recovery."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

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
from include.reporting.verify import verify_reports

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
    assert safe_run_id("manual__2026-11-27T14:00:00+00:00").startswith("manual__2026-11-27T14-00-00_00-00~")
    assert safe_run_id("../etc/passwd").startswith("_._etc_passwd~")
    assert "/" not in safe_run_id("a/b") and safe_run_id("a b").startswith("a_b~")
    assert safe_run_id("backfill-42") == "backfill-42"
    with pytest.raises(ValueError, match="run_id must be a non-empty string"):
        safe_run_id("")


def test_pack_layout_and_manifest_hashes(tmp_path):
    pack = write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    folder = tmp_path / "runs" / safe_run_id("manual__2026-11-27T14:00:00+00:00")
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


def test_run_ids_differing_only_in_replaced_characters_get_separate_packs(tmp_path):
    """Issue 8 item 7: ``:`` and ``-`` used to map to one folder; the second run got no pack."""
    first = write_evidence_pack(tmp_path, document("manual__2026-12-01T10:00:00"), PASSED, now=NOW)
    second = write_evidence_pack(tmp_path, document("manual__2026-12-01T10-00-00"), PASSED, now=NOW)
    assert first.created and second.created and first.path != second.path
    assert [entry["run_id"] for entry in read_chain(tmp_path)] == [first.run_id, second.run_id]
    assert find_pack(tmp_path, "manual__2026-12-01T10:00:00").path == first.path
    assert find_pack(tmp_path, "manual__2026-12-01T10-00-00").path == second.path
    assert verify_reports(tmp_path).ok


def test_long_run_ids_sharing_a_prefix_get_separate_packs(tmp_path):
    stem = "manual__" + "x" * 300
    first = write_evidence_pack(tmp_path, document(stem + "a"), PASSED, now=NOW)
    second = write_evidence_pack(tmp_path, document(stem + "b"), PASSED, now=NOW)
    assert second.created and first.path != second.path
    assert len(first.path.name) <= 200 and len(second.path.name) <= 200


def test_packs_are_found_through_the_chain_not_by_guessing_the_folder(tmp_path, monkeypatch):
    """A pack sealed under another folder name (an earlier naming rule) is still this run's
    pack: a retry returns it instead of sealing a second pack for the same run."""
    import include.reporting.evidence_pack as evidence_pack

    with monkeypatch.context() as patched:
        patched.setattr(evidence_pack, "safe_run_id", lambda run_id: "legacy-folder-name")
        sealed = write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    assert sealed.path.name == "legacy-folder-name"
    again = write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    assert not again.created and again.path == sealed.path
    assert find_pack(tmp_path, sealed.run_id).path == sealed.path
    assert len(read_chain(tmp_path)) == 1


def test_a_run_folder_holding_another_run_is_refused(tmp_path):
    pack = write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    chain = json.loads((tmp_path / "chain.json").read_text())
    chain["packs"][0]["run_id"] = "manual__someone-else"
    (tmp_path / "chain.json").write_text(json.dumps(chain))
    with pytest.raises(EvidencePackError, match="holds run 'manual__2026-11-27T14:00:00\\+00:00'"):
        write_evidence_pack(tmp_path, document("manual__someone-else"), PASSED, now=NOW)
    assert pack.path.exists()


@pytest.fixture
def crash_while_writing(monkeypatch):
    """Make the process 'die' half-way through writing any file whose name contains a word:
    half the bytes reach the disk, then the write raises (like kill -9 mid-write)."""
    original = Path.open

    def arm(word: str) -> None:
        def opening(self, mode="r", *args, **kwargs):
            handle = original(self, mode, *args, **kwargs)
            if word in self.name and "w" in mode:
                real_write = handle.write

                def half(data):
                    real_write(data[: len(data) // 2])
                    handle.flush()
                    raise OSError("simulated crash mid-write")

                handle.write = half
            return handle

        monkeypatch.setattr(Path, "open", opening)

    return arm


def test_chain_json_is_replaced_atomically(tmp_path, crash_while_writing):
    """A crash while chain.json is rewritten leaves the previous, complete index (it used to be
    truncated and rewritten in place: a crash left half a JSON document and no chain)."""
    write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    before = (tmp_path / "chain.json").read_bytes()
    crash_while_writing("chain.json")
    with pytest.raises(OSError, match="simulated crash"):
        write_evidence_pack(tmp_path, document("scheduled__2026-12-08T02:00:00+00:00"), PASSED, now=NOW)
    assert (tmp_path / "chain.json").read_bytes() == before
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", ["manifest.json", "audit.json", "validation.json"])
def test_every_pack_json_is_written_atomically(tmp_path, crash_while_writing, name):
    """A crash mid-write never leaves a half file: the pack stays unsealed (no manifest) or
    the file does not exist, and the retry seals a complete pack."""
    crash_while_writing(name)
    with pytest.raises(OSError, match="simulated crash"):
        write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    folder = tmp_path / "runs" / safe_run_id(document()["run"]["run_id"])
    assert not (folder / name).exists()
    assert not (folder / "manifest.json").exists()


def test_a_retry_after_a_crash_leaves_no_stray_file_in_the_pack(tmp_path):
    folder = tmp_path / "runs" / safe_run_id(document()["run"]["run_id"])
    folder.mkdir(parents=True)
    (folder / ".audit.json.123.abcdef01.tmp").write_text("half")
    write_evidence_pack(tmp_path, document(), PASSED, now=NOW)
    assert verify_reports(tmp_path).ok


def test_control_characters_and_lone_surrogates_from_the_api(tmp_path):
    """NUL, ESC and an unpaired surrogate in API text: sealing works, audit.json keeps the exact
    value, audit.csv and report.html show visible stand-ins, formula-safety still holds."""
    hostile = "db\x00\x1b[2Jhidden\ud800"
    rows = fleet_rows()
    rows[1]["description"] = hostile
    rows[2]["server_name"] = "=\x00cmd"
    run = make_run()
    pack = write_evidence_pack(tmp_path, build_audit_document(rows, run), PASSED, now=NOW)
    stored = json.loads((pack.path / "audit.json").read_text())
    assert {row["description"] for row in stored["servers"]} >= {hostile}
    csv_text = (pack.path / "audit.csv").read_text(encoding="utf-8")
    html = (pack.path / "report.html").read_text(encoding="utf-8")
    for text in (csv_text, html):
        assert "\x00" not in text and "\x1b" not in text
        assert "db\u2400\u241b[2Jhidden\ufffd" in text
    assert "'=\u2400cmd" in csv_text
    assert verify_reports(tmp_path).ok


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
