"""verify_reports and the CLI: each kind of tampering is named, a clean chain passes, nothing
unverified is ever called VERIFIED, the expected head is enforced, and no path read from the
storage leads out of the reports location."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_samples import fleet_rows, make_run

import include.reporting.verify as verify_module
from include.reporting.__main__ import main
from include.reporting.audit_document import build_audit_document
from include.reporting.evidence_pack import read_chain, safe_run_id, write_evidence_pack
from include.reporting.verify import (
    AnchorStatus,
    ProblemKind,
    VerifyStatus,
    verify_chain,
    verify_reports,
)

PASSED = {"suite": "audit", "success": True, "evaluated": 0, "failed": [], "checks": []}
RUN_IDS = [
    "scheduled__2026-10-13T02:00:00+00:00",
    "scheduled__2026-11-10T02:00:00+00:00",
    "manual__2026-11-27T14:00:00+00:00",
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def base(tmp_path):
    reports = tmp_path / "reports"
    for run_id in RUN_IDS:
        document = build_audit_document(fleet_rows(), make_run(run_id))
        write_evidence_pack(reports, document, PASSED, now=datetime(2026, 11, 27, tzinfo=UTC))
    return reports


def pack(base, index: int) -> Path:
    return base / "runs" / safe_run_id(RUN_IDS[index])


def texts(result) -> list[str]:
    return [str(problem) for problem in result.problems]


def kinds(result) -> set[ProblemKind]:
    return {problem.kind for problem in result.problems}


def head_of(base) -> str:
    return read_chain(base)[-1]["manifest_sha256"]


def reseal(folder: Path, base: Path, edit) -> str:
    """What an attacker with write access does: edit a file, re-hash it into the manifest, and
    fix chain.json - everything inside the storage is consistent again. Returns the new hash."""
    edit(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["files"]:
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    raw = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (folder / "manifest.json").write_bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    chain = json.loads((base / "chain.json").read_text())
    for entry in chain["packs"]:
        if entry["pack"] == folder.name:
            entry["manifest_sha256"] = digest
    (base / "chain.json").write_text(json.dumps(chain))
    return digest


def forge_success(folder: Path) -> None:
    audit = folder / "audit.json"
    audit.write_text(audit.read_text().replace('"failed"', '"patched"'))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include.reporting", "verify", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- a clean chain, and the tampering the chain itself detects -------------------------------


def test_clean_chain_verifies(base, capsys):
    result = verify_reports(base)
    assert result.ok and result.packs_checked == 3 and not result.warnings
    assert result.status is VerifyStatus.VERIFIED and result.exit_code == 0
    assert result.head == head_of(base)
    assert [verdict.ok for verdict in result.packs] == [True, True, True]
    assert main(["verify", str(base)]) == 0
    out = capsys.readouterr().out
    assert "VERIFIED" in out and head_of(base) in out and "--expect-head" in out


def test_modified_file_is_named(base, capsys):
    audit = pack(base, 1) / "audit.json"
    audit.write_text(audit.read_text().replace('"patched"', '"failed"', 1))
    result = verify_reports(base)
    name = f"runs/{safe_run_id(RUN_IDS[1])}/audit.json"
    assert result.first_broken.startswith(f"{name}: modified")
    assert [verdict.ok for verdict in result.packs] == [True, False, True]
    assert main(["verify", str(base)]) == 1
    out = capsys.readouterr().out
    assert f"TAMPERED: {name}: modified" in out and "FAILED: 1 problem(s)" in out


def test_rewritten_manifest_breaks_the_next_link(base):
    """An attacker edits a file, re-hashes it into the manifest and fixes chain.json: still caught
    by the next pack's link, and both packs the broken link joins are distrusted."""
    reseal(pack(base, 0), base, lambda folder: (folder / "audit.csv").write_text("server_id\r\n"))
    result = verify_reports(base)
    assert not result.ok
    assert result.first_broken.startswith(f"chain link #2 (run {RUN_IDS[1]}): broken link")
    assert [verdict.ok for verdict in result.packs] == [False, False, True]


def test_deleted_pack_in_the_middle(base):
    shutil.rmtree(pack(base, 1))
    result = verify_reports(base)
    assert (
        result.first_broken
        == f"runs/{safe_run_id(RUN_IDS[1])}/manifest.json: missing (pack deleted or unsealed)"
    )


def test_pack_removed_from_chain_index(base):
    chain = json.loads((base / "chain.json").read_text())
    del chain["packs"][1]
    (base / "chain.json").write_text(json.dumps(chain))
    result = verify_reports(base)
    assert ProblemKind.BROKEN_LINK in kinds(result)
    assert any("sealed pack not listed in chain.json" in problem for problem in texts(result))


def test_added_file_and_deleted_file(base):
    (pack(base, 2) / "extra.html").write_text("<p>forged</p>")
    (pack(base, 0) / "validation.json").unlink()
    problems = texts(verify_reports(base))
    assert f"runs/{safe_run_id(RUN_IDS[0])}/validation.json: missing (listed in the manifest)" in problems
    assert (
        f"runs/{safe_run_id(RUN_IDS[2])}/extra.html: not listed in the manifest (added afterwards)"
        in problems
    )


def test_incomplete_pack_is_only_a_warning(base):
    (base / "runs" / "manual__crashed").mkdir()
    (base / "runs" / "manual__crashed" / "audit.json").write_text("{")
    result = verify_reports(base)
    assert result.ok
    assert result.warnings == ["runs/manual__crashed: incomplete pack (no manifest), ignored"]
    assert result.incomplete == ["manual__crashed"]


def test_every_broken_item_is_named_not_just_the_first(base):
    (pack(base, 0) / "report.html").write_text("forged")
    (pack(base, 1) / "audit.csv").unlink()
    (pack(base, 2) / "manifest.json").write_text("{ not json")
    result = verify_reports(base)
    problems = texts(result)
    assert any(p.startswith(f"runs/{safe_run_id(RUN_IDS[0])}/report.html: modified") for p in problems)
    assert f"runs/{safe_run_id(RUN_IDS[1])}/audit.csv: missing (listed in the manifest)" in problems
    assert any(
        p.startswith(f"runs/{safe_run_id(RUN_IDS[2])}/manifest.json: not valid JSON") for p in problems
    )
    assert [verdict.ok for verdict in result.packs] == [False, False, False]


# --- a forged pack dropped into runs/ ---------------------------------------------------------


def test_forged_pack_outside_the_chain_is_a_problem_even_when_it_links_to_the_tail(base):
    """Earlier, a sealed pack linking to the chain's tail was only a warning ("not yet
    indexed"): a forger could copy the newest pack, edit it and drop it into runs/."""
    forged = base / "runs" / "manual__forged"
    shutil.copytree(pack(base, 2), forged)
    manifest = json.loads((forged / "manifest.json").read_text())
    manifest.update(run_id="manual__forged", pack="manual__forged")
    manifest["previous_manifest"] = {"run_id": RUN_IDS[2], "sha256": head_of(base)}
    (forged / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    result = verify_reports(base)
    assert result.status is VerifyStatus.TAMPERED
    assert texts(result) == [
        "runs/manual__forged: sealed pack not listed in chain.json (forged, removed from the chain, or "
        "its sealing never finished: re-run that run's audit task)"
    ]
    outside = [verdict for verdict in result.packs if verdict.position is None]
    assert [(v.pack, v.ok) for v in outside] == [("manual__forged", False)]


# --- refusing what cannot be verified ---------------------------------------------------------


def _missing(tmp: Path) -> Path:
    return tmp / "nope"


def _empty(tmp: Path) -> Path:
    return tmp


def _wrong_folder(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("x")
    return tmp


def _a_file(tmp: Path) -> Path:
    (tmp / "chain.json").write_text("{}")
    return tmp / "chain.json"


def _no_pack(tmp: Path) -> Path:
    (tmp / "chain.json").write_text('{"packs": []}')
    (tmp / "runs").mkdir()
    return tmp


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_missing, "does not exist"),
        (_empty, "is not a reports folder: it holds neither chain.json nor runs/"),
        (_wrong_folder, "is not a reports folder"),
        (_a_file, "is a file"),
        (_no_pack, "holds no sealed evidence pack: nothing to verify"),
    ],
    ids=["missing", "empty", "wrong-folder", "a-file", "no-pack"],
)
def test_unverifiable_locations_are_refused_never_verified(tmp_path, capsys, make, reason):
    location = make(tmp_path)
    result = verify_reports(location)
    assert result.status is VerifyStatus.REFUSED and not result.ok and result.exit_code == 2
    assert reason in result.refused
    assert main(["verify", str(location)]) == 2
    captured = capsys.readouterr()
    assert "VERIFIED" not in captured.out and captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("REFUSED: ")


def test_a_bad_expected_head_is_refused(base, capsys):
    assert main(["verify", str(base), "--expect-head", "not-a-hash"]) == 2
    assert "--expect-head must be a SHA-256" in capsys.readouterr().err


# --- the expected head: the anchor kept outside the storage -----------------------------------


def test_expected_head_matches(base, capsys):
    result = verify_reports(base, expect_head=head_of(base))
    assert result.ok and result.anchor.status is AnchorStatus.MATCHES
    assert main(["verify", str(base), "--expect-head", head_of(base).upper()]) == 0
    assert "The newest pack has the expected head" in capsys.readouterr().out


def test_removed_newest_pack_is_caught_only_with_the_expected_head(base, capsys):
    anchor = head_of(base)
    shutil.rmtree(pack(base, 2))
    chain = json.loads((base / "chain.json").read_text())
    chain["packs"].pop()
    (base / "chain.json").write_text(json.dumps(chain))
    assert verify_reports(base).ok  # nothing inside the storage can tell
    result = verify_reports(base, expect_head=anchor)
    assert result.anchor.status is AnchorStatus.NOT_FOUND and result.exit_code == 1
    assert texts(result) == [
        f"chain.json: no pack has the expected head manifest SHA-256 {anchor}; the newest pack is run "
        f"{RUN_IDS[1]} with {head_of(base)[:16]}...: the expected pack was removed or re-sealed"
    ]
    assert main(["verify", str(base), "--expect-head", anchor]) == 1
    assert "TAMPERED: chain.json: no pack has the expected head" in capsys.readouterr().out


def test_resealed_newest_pack_is_caught_only_with_the_expected_head(base):
    anchor = head_of(base)
    reseal(pack(base, 2), base, forge_success)
    assert verify_reports(base).ok
    result = verify_reports(base, expect_head=anchor)
    assert result.anchor.status is AnchorStatus.NOT_FOUND
    assert kinds(result) == {ProblemKind.HEAD_MISMATCH}


def test_packs_sealed_after_the_expected_head_are_named(base):
    older = read_chain(base)[0]["manifest_sha256"]
    result = verify_reports(base, expect_head=older)
    assert result.anchor.status is AnchorStatus.BEHIND and result.anchor.position == 1
    assert result.anchor.packs_after == 2
    assert texts(result) == [
        f"chain.json: the expected head {older[:16]}... is pack #1, but 2 pack(s) were sealed after it: "
        f"{RUN_IDS[1]}, {RUN_IDS[2]}"
    ]


# --- malformed chain and manifests: named, never a traceback ----------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{ half", "chain.json: not valid JSON"),
        ('["a list"]', "chain.json: not a chain index (expected an object with a 'packs' list)"),
        ('{"packs": "nope"}', "chain.json: not a chain index"),
        ("\udcff".encode("utf-8", "surrogateescape").decode("latin-1"), "chain.json: not valid JSON"),
    ],
    ids=["truncated", "list", "packs-not-list", "binary"],
)
def test_malformed_chain_is_named_without_traceback(base, content, expected):
    (base / "chain.json").write_text(content, encoding="latin-1")
    result = run_cli(str(base))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stderr == ""
    assert f"TAMPERED: {expected}" in result.stdout


def test_every_malformed_chain_entry_is_named(base):
    chain = json.loads((base / "chain.json").read_text())
    chain["packs"][0]["manifest_sha256"] = "abc"
    chain["packs"][1] = "a string"
    del chain["packs"][2]["run_id"]
    (base / "chain.json").write_text(json.dumps(chain))
    result = verify_reports(base)
    problems = texts(result)
    assert "chain.json: entry #1: manifest_sha256 'abc' is not a SHA-256 digest" in problems
    assert "chain.json: entry #2: is a str, expected an object" in problems
    assert "chain.json: entry #3: run_id None is not a non-empty string" in problems
    assert [verdict.ok for verdict in result.packs if verdict.position] == [False, False, False]


def test_every_malformed_manifest_item_is_named(base):
    folder = pack(base, 1)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["audit.csv"] = {"sha256": 42}
    manifest["files"]["report.html"] = "not an object"
    manifest["previous_manifest"] = "nope"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = run_cli(str(base))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    where = f"runs/{safe_run_id(RUN_IDS[1])}/manifest.json"
    for detail in (
        "entry for 'audit.csv' needs a sha256 and a byte count",
        "entry for 'report.html' needs a sha256 and a byte count",
        "previous_manifest is neither null nor a run id + sha256",
    ):
        assert f"TAMPERED: {where}: {detail}" in result.stdout


def test_manifest_that_is_not_an_object(base):
    (pack(base, 0) / "manifest.json").write_text("[1, 2]")
    result = verify_reports(base)
    where = f"runs/{safe_run_id(RUN_IDS[0])}/manifest.json"
    assert f"{where}: not a manifest (expected an object with 'files')" in texts(result)


def test_odd_shapes_in_the_location_are_named_without_traceback(tmp_path):
    reports = tmp_path / "reports"
    write_evidence_pack(reports, build_audit_document(fleet_rows(), make_run(RUN_IDS[0])), PASSED)
    folder = reports / "runs" / safe_run_id(RUN_IDS[0])
    (reports / "runs" / "stray.txt").write_text("x")
    (folder / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)  # too deep for json
    result = run_cli(str(reports))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "TAMPERED: runs/stray.txt: a file where only pack folders belong" in result.stdout
    assert f"TAMPERED: runs/{folder.name}/manifest.json: not valid JSON" in result.stdout
    shutil.rmtree(reports / "runs")
    (reports / "runs").write_text("not a folder")
    result = run_cli(str(reports))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "TAMPERED: runs: is a file where the pack folders belong" in result.stdout


# --- staying inside the reports location ------------------------------------------------------


@pytest.fixture
def reads(monkeypatch):
    """Every path verify reads."""
    seen: list[Path] = []
    original = verify_module.read_bytes

    def recording(path):
        seen.append(Path(path).resolve())
        return original(path)

    monkeypatch.setattr(verify_module, "read_bytes", recording)
    return seen


def outside_pack(tmp_path: Path) -> Path:
    """A complete, valid-looking pack outside the reports location."""
    other = tmp_path / "elsewhere"
    write_evidence_pack(other, build_audit_document(fleet_rows(), make_run("manual__other")), PASSED)
    return other / "runs" / safe_run_id("manual__other")


@pytest.mark.parametrize("escape", ["../../elsewhere/runs/{name}", "{absolute}", "..", "."])
def test_chain_paths_leaving_the_location_are_refused_not_followed(base, tmp_path, reads, escape):
    target = outside_pack(tmp_path)
    chain = json.loads((base / "chain.json").read_text())
    chain["packs"][1]["pack"] = escape.format(name=target.name, absolute=target)
    (base / "chain.json").write_text(json.dumps(chain))
    result = verify_reports(base)
    assert any(
        p.startswith("chain.json: entry #2: pack") and "is not a folder name inside runs/ (refused)" in p
        for p in texts(result)
    )
    assert all(path.is_relative_to(base.resolve()) for path in reads)


@pytest.mark.parametrize("escape", ["../../../elsewhere/secret.txt", "/etc/passwd", "sub/audit.json"])
def test_manifest_paths_leaving_the_pack_are_refused_not_followed(base, tmp_path, reads, escape):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.txt").write_text("secret")
    folder = pack(base, 0)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][escape] = {"sha256": "0" * 64, "bytes": 6}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = verify_reports(base)
    where = f"runs/{safe_run_id(RUN_IDS[0])}/manifest.json"
    assert f"{where}: lists file {escape!r}, not a plain name in the pack (refused)" in texts(result)
    assert all(path.is_relative_to(base.resolve()) for path in reads)


def test_symlinks_leading_outside_are_not_followed(base, tmp_path, reads):
    target = outside_pack(tmp_path)
    audit = pack(base, 0) / "audit.json"
    audit.unlink()
    audit.symlink_to(target / "audit.json")
    chain = json.loads((base / "chain.json").read_text())
    (base / "runs" / "linked").symlink_to(target, target_is_directory=True)
    chain["packs"][2]["pack"] = "linked"
    (base / "chain.json").write_text(json.dumps(chain))
    result = verify_reports(base)
    problems = texts(result)
    linked = f"runs/{safe_run_id(RUN_IDS[0])}/audit.json"
    assert f"{linked}: leads outside the reports location (not followed)" in problems
    assert "runs/linked: leads outside the reports location (not followed)" in problems
    assert all(path.is_relative_to(base.resolve()) for path in reads)


# --- entry points -----------------------------------------------------------------------------


def test_cli_module_entry_point(base):
    (pack(base, 2) / "report.html").write_text("<html>forged</html>")
    result = run_cli(str(base))
    assert result.returncode == 1, result.stderr
    assert f"runs/{safe_run_id(RUN_IDS[2])}/report.html: modified" in result.stdout
    refused = run_cli(str(base / "runs" / safe_run_id(RUN_IDS[2]) / "audit.json"))
    assert refused.returncode == 2 and refused.stdout == "" and "is a file" in refused.stderr


def test_verify_chain_is_the_same_check(base):
    assert verify_chain(base).ok and verify_chain(base).head == head_of(base)


def test_object_storage_path_location(tmp_path, capsys):
    """Packs, chain and verification through Airflow's ObjectStoragePath (file://, like s3://)."""
    from airflow.sdk import ObjectStoragePath

    base = ObjectStoragePath(f"file://{tmp_path}/reports")
    for run_id in RUN_IDS[:2]:
        write_evidence_pack(base, build_audit_document(fleet_rows(), make_run(run_id)), PASSED)
    assert (tmp_path / "reports" / "runs" / safe_run_id(RUN_IDS[1]) / "manifest.json").exists()
    assert not list((tmp_path / "reports").rglob("*.tmp"))
    assert verify_reports(base).packs_checked == 2
    assert main(["verify", f"file://{tmp_path}/reports"]) == 0
    (tmp_path / "reports" / "runs" / safe_run_id(RUN_IDS[0]) / "audit.csv").write_text("x")
    assert main(["verify", f"file://{tmp_path}/reports"]) == 1
    assert "audit.csv: modified" in capsys.readouterr().out
    assert main(["verify", f"file://{tmp_path}/nothing-here"]) == 2
