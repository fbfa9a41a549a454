"""Evidence under tampering (issue 8 items 15 and 16): ``verify`` and the compliance replay.

One genuine run seals a pack in which VA1FLTWIN02 failed (its update fails for good). Each test
works on its own copy of the reports folder: a forged pack outside the chain that says the
server was patched, a re-sealed newest pack, and locations that hold nothing to verify.
``verify`` is the CLI a person runs (``python -m include.reporting verify``); compliance is the
``compliance_report`` DAG.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.faults.harness import ROOT, assert_invariants

pytestmark = [pytest.mark.slow, pytest.mark.faults]

CONF = {"server_allow_list": ["va1fltwin01", "va1fltwin02"], "max_errors": "1"}
FORGED_RUN = "forged__2026-03-10T03:00:00"


@pytest.fixture(scope="module")
def genuine(make_module_lab) -> tuple:
    lab = make_module_lab()
    return lab, lab.run(CONF)


def verify(location: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include.reporting", "verify", str(location), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def reports_copy(lab, tmp_path: Path) -> Path:
    target = tmp_path / "reports"
    shutil.copytree(lab.home / "reports", target)
    return target


def the_pack(reports: Path) -> Path:
    (pack,) = [p for p in (reports / "runs").iterdir() if (p / "manifest.json").exists()]
    return pack


def reseal(pack: Path, document: dict, *, run_id: str | None = None) -> str:
    """Rewrite ``audit.json`` and a manifest that matches it; return the manifest's SHA-256."""
    audit = json.dumps(document, indent=1, sort_keys=True).encode()
    (pack / "audit.json").write_bytes(audit)
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["files"]["audit.json"] = {"sha256": hashlib.sha256(audit).hexdigest(), "bytes": len(audit)}
    if run_id:
        manifest.update(run_id=run_id, pack=pack.name)
    raw = json.dumps(manifest, indent=1, sort_keys=True).encode()
    (pack / "manifest.json").write_bytes(raw)
    return hashlib.sha256(raw).hexdigest()


def claim_patched(document: dict, server: str, *, run_id: str | None = None) -> dict:
    forged = json.loads(json.dumps(document))
    for row in forged["servers"]:
        if row["server_id"] == server:
            row.update(state="patched", reason="", patches_failed=0)
    if run_id:  # a later run, a minute after the genuine one
        later = datetime.fromisoformat(forged["run"]["ended_at"].replace("Z", "+00:00")) + timedelta(
            minutes=1
        )
        forged["run"].update(run_id=run_id, ended_at=later.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return forged


def test_the_genuine_run_holds_every_invariant(genuine):
    lab, result = genuine
    assert_invariants(
        result,
        lab.expectations(CONF),
        the_failed_update_is_reported_failed=result.run.rows()["va1fltwin02"]["state"] == "failed",
    )


def test_a_forged_pack_outside_the_chain_is_named_by_verify_and_left_out_of_compliance(genuine, tmp_path):
    """Item 15: a pack that is not in the chain says VA1FLTWIN02 was patched. ``verify`` must
    reject it by name, and the compliance report must not count it."""
    lab, _ = genuine
    reports = reports_copy(lab, tmp_path)
    genuine_pack = the_pack(reports)
    forged = reports / "runs" / "forged__2026-03-10T03-00-00"
    shutil.copytree(genuine_pack, forged)
    document = json.loads((genuine_pack / "audit.json").read_text())
    reseal(forged, claim_patched(document, "va1fltwin02", run_id=FORGED_RUN), run_id=FORGED_RUN)
    checked = verify(reports)
    # as of now on our clock: the simulator's clock runs ahead, and successes are dated on ours
    # (observed_at), so the genuine success counts right after the run (issue 10)
    outcome, _ = lab.run_runner(
        "compliance_report",
        {},
        tmp_path / "compliance",
        env={"PATCHFLOW_REPORTS": str(reports)},
    )
    compliance_file = reports / "compliance" / "compliance.json"
    compliance = json.loads(compliance_file.read_text()) if compliance_file.exists() else {}
    status = {s["server_id"]: s["status"] for s in compliance.get("servers", [])}
    assert (checked.returncode, "forged" in checked.stdout + checked.stderr, status.get("va1fltwin02")) == (
        1,
        True,
        "non_compliant",
    ), (checked.stdout[-2000:], checked.stderr[-2000:], outcome.get("state"), status)
    assert status.get("va1fltwin01") == "compliant", status  # the genuine success does count


def test_verify_detects_a_resealed_newest_pack_against_the_head_from_the_asset_event(genuine, tmp_path):
    """Item 16: the newest pack is rewritten and its chain entry re-sealed to match, so storage
    alone looks intact; the manifest hash published with the asset event (``--expect-head``)
    tells it was changed."""
    lab, _ = genuine
    reports = reports_copy(lab, tmp_path)
    pack = the_pack(reports)
    head = hashlib.sha256((pack / "manifest.json").read_bytes()).hexdigest()
    new_head = reseal(pack, claim_patched(json.loads((pack / "audit.json").read_text()), "va1fltwin02"))
    chain_file = reports / "chain.json"
    chain = json.loads(chain_file.read_text())
    entries = chain if isinstance(chain, list) else chain.get("packs", chain.get("entries", []))
    entries[-1]["manifest_sha256"] = new_head
    chain_file.write_text(json.dumps(chain, indent=1))
    checked = verify(reports, "--expect-head", head)
    assert checked.returncode == 1, (checked.returncode, checked.stdout[-2000:], checked.stderr[-2000:])


@pytest.mark.parametrize("where", ["empty folder", "artifacts folder", "a file", "malformed chain"])
def test_verify_refuses_what_it_cannot_verify_and_never_shows_a_traceback(genuine, tmp_path, where):
    """Item 16: nothing to verify is never VERIFIED; a malformed chain is named, not a crash."""
    lab, _ = genuine
    if where == "empty folder":
        location = tmp_path / "empty"
        location.mkdir()
    elif where == "artifacts folder":
        location = lab.home / "artifacts"
    elif where == "a file":
        location = the_pack(lab.home / "reports") / "audit.json"
    else:
        location = reports_copy(lab, tmp_path)
        (location / "chain.json").write_text('{"packs": [{"run_id": ')
    checked = verify(location)
    output = checked.stdout + checked.stderr
    assert checked.returncode != 0 and "Traceback" not in output and "VERIFIED" not in output.upper(), (
        checked.returncode,
        output[-2000:],
    )
