"""Compliance counts only evidence that verifies (I10), and checks the newest pack against the
anchor published in the patch_audit asset event (issue 8, item 15).

The fleet: four patchable servers; the first run patches three of them (75 %). Every attack
below tries to turn that into 100 %.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_samples import make_row, make_run

from include.reporting.audit_document import build_audit_document
from include.reporting.compliance import (
    EvidenceAnchor,
    build_compliance_report,
    update_compliance_report,
)
from include.reporting.evidence_pack import read_chain, write_evidence_pack

PASSED = {"suite": "audit", "success": True, "evaluated": 0, "failed": [], "checks": []}
AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)
FIRST = "scheduled__2026-11-10T02:00:00+00:00"
SECOND = "scheduled__2026-11-12T02:00:00+00:00"


def seal(base: Path, run_id: str, day: str, states: dict[str, str], **fields) -> None:
    times = {"started_at": f"{day}T02:00:00Z", "ended_at": f"{day}T03:00:00Z"}
    rows = []
    for server_id, state in states.items():
        row = make_row(server_id, state, **fields)
        if row["started_at"]:
            row.update(times, observed_at=times["ended_at"])
        rows.append(row)
    run = make_run(run_id, run_type="scheduled", triggered_by=None, **times)
    write_evidence_pack(base, build_audit_document(rows, run), PASSED, now=datetime.now(UTC))


@pytest.fixture
def base(tmp_path) -> Path:
    reports = tmp_path / "reports"
    seal(
        reports,
        FIRST,
        "2026-11-10",
        {"va1a": "patched", "va1b": "patched", "va1c": "patched", "va1d": "failed"},
    )
    seal(reports, SECOND, "2026-11-12", {"va1a": "patched_no_updates", "va1d": "failed"})
    return reports


def folder_of(base: Path, run_id: str) -> Path:
    return base / "runs" / next(entry["pack"] for entry in read_chain(base) if entry["run_id"] == run_id)


def head(base: Path) -> EvidenceAnchor:
    newest = read_chain(base)[-1]
    return EvidenceAnchor(newest["manifest_sha256"], newest["run_id"])


def rehash(folder: Path, **manifest_fields) -> str:
    """Make a pack internally consistent again after an edit; return its manifest hash."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(manifest_fields)
    for name in manifest["files"]:
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    raw = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (folder / "manifest.json").write_bytes(raw)
    return hashlib.sha256(raw).hexdigest()


def forge_d_patched(folder: Path, run_id: str | None = None) -> None:
    audit = json.loads((folder / "audit.json").read_text())
    for row in audit["servers"]:
        if row["server_id"] == "va1d":
            row.update(state="patched", reason="", patches_failed=0)
    if run_id:
        audit["run"]["run_id"] = run_id
        audit["run"]["started_at"] = "2026-11-15T02:00:00Z"
    (folder / "audit.json").write_text(json.dumps(audit, indent=2))


def report_for(base: Path, **kwargs):
    return build_compliance_report(base, as_of=AS_OF, validate=False, **kwargs)


def test_the_honest_history_is_75_percent(base):
    report = report_for(base, anchor=head(base))
    assert report.summary["compliance_pct"] == 75.0 and report.excluded == []
    assert report.evidence["anchor"]["status"] == "matches" and not report.anchor_mismatch


def test_forged_pack_outside_the_chain_does_not_raise_compliance(base):
    """The issue's case: a forged pack folder in runs/ raised compliance from 75 % to 100 %."""
    forged = base / "runs" / "manual__forged"
    shutil.copytree(folder_of(base, SECOND), forged)
    forge_d_patched(forged, run_id="manual__forged")
    newest = read_chain(base)[-1]
    rehash(
        forged,
        run_id="manual__forged",
        pack="manual__forged",
        previous_manifest={"run_id": newest["run_id"], "sha256": newest["manifest_sha256"]},
    )
    report = update_compliance_report(base, as_of=AS_OF)
    assert report.summary["compliance_pct"] == 75.0
    assert report.summary["packs_excluded"] == 1
    [excluded] = report.excluded
    assert excluded["pack"] == "manual__forged"
    assert excluded["reasons"] == [
        "runs/manual__forged: sealed pack not listed in chain.json (forged, removed from the chain, or its "
        "sealing never finished: re-run that run's audit task)"
    ]
    folder = base / "compliance"
    stored = json.loads((folder / "compliance.json").read_text())
    assert stored["excluded_packs"] == [excluded] and stored["summary"]["compliance_pct"] == 75.0
    lines = list(csv.DictReader(io.StringIO((folder / "compliance_runs.csv").read_text(), newline="")))
    assert {(line["pack"], line["status"]) for line in lines if line["status"] == "excluded"} == {
        ("manual__forged", "excluded")
    }
    assert [line["run_id"] for line in lines if line["status"] == "included"] == [FIRST, SECOND]
    html = (folder / "compliance.html").read_text()
    assert 'data-evidence="excluded"' in html and 'data-excluded-pack="manual__forged"' in html
    assert html.index('data-evidence="excluded"') < html.index("<h2>Summary</h2>")


def test_a_listed_pack_that_fails_verification_is_excluded(base):
    """Earlier only audit.json was compared with the manifest; any failed file now excludes."""
    seal(base, "scheduled__2026-11-14T02:00:00+00:00", "2026-11-14", {"va1d": "patched"})
    assert report_for(base).summary["compliance_pct"] == 100.0
    folder = folder_of(base, "scheduled__2026-11-14T02:00:00+00:00")
    (folder / "report.html").write_text("<p>edited</p>")
    report = report_for(base)
    assert report.summary["compliance_pct"] == 75.0
    assert [item["run_id"] for item in report.excluded] == ["scheduled__2026-11-14T02:00:00+00:00"]
    assert report.excluded[0]["reasons"][0].startswith(f"runs/{folder.name}/report.html: modified")


def test_a_resealed_newest_pack_is_caught_by_the_anchor(base):
    anchor = head(base)
    folder = folder_of(base, SECOND)
    forge_d_patched(folder)
    digest = rehash(folder)
    chain = json.loads((base / "chain.json").read_text())
    chain["packs"][-1]["manifest_sha256"] = digest
    (base / "chain.json").write_text(json.dumps(chain))
    assert report_for(base).summary["compliance_pct"] == 100.0  # consistent inside the storage
    report = update_compliance_report(base, as_of=AS_OF, anchor=anchor)
    assert report.anchor_mismatch and report.summary["compliance_pct"] == 75.0
    assert report.evidence["anchor"]["status"] == "not_found"
    assert [item["run_id"] for item in report.excluded] == [SECOND]
    assert "re-sealed" in report.excluded[0]["reasons"][0]
    html = (base / "compliance" / "compliance.html").read_text()
    assert 'role="alert" data-anchor="not_found">ANCHOR MISMATCH' in html
    assert anchor.manifest_sha256 in html


def test_a_removed_newest_pack_is_caught_by_the_anchor(base):
    anchor = head(base)
    shutil.rmtree(folder_of(base, SECOND))
    chain = json.loads((base / "chain.json").read_text())
    chain["packs"].pop()
    (base / "chain.json").write_text(json.dumps(chain))
    report = report_for(base, anchor=anchor)
    assert report.anchor_mismatch
    assert f"the pack of run {SECOND} was removed or re-sealed" in report.evidence["anchor"]["message"]


def test_packs_sealed_after_the_anchor_wait_for_their_own_report(base):
    """A run sealed between the asset event and this report is a race, not tampering: it is
    left for the report its own event triggers (and a forged tail could never count early)."""
    anchor = head(base)
    seal(base, "scheduled__2026-11-14T02:00:00+00:00", "2026-11-14", {"va1d": "patched"})
    report = report_for(base, anchor=anchor)
    assert not report.anchor_mismatch and report.evidence["status"] == "verified"
    assert report.evidence["anchor"]["status"] == "behind"
    assert report.summary["compliance_pct"] == 75.0
    assert report.excluded[0]["reasons"][0].startswith(
        "sealed after the pack announced by this report's anchor"
    )
    assert report_for(base, anchor=head(base)).summary["compliance_pct"] == 100.0


def test_an_anchor_must_be_a_sha256():
    with pytest.raises(ValueError, match="an anchor needs a manifest SHA-256"):
        EvidenceAnchor("../etc/passwd")


def test_control_characters_never_reach_the_compliance_csv_or_html(tmp_path):
    seal(tmp_path, FIRST, "2026-11-10", {"va1a": "patched"}, server_name="web\x00\x07=1")
    report = update_compliance_report(tmp_path, as_of=AS_OF)
    for name in ("compliance.csv", "compliance.html"):
        text = (tmp_path / "compliance" / name).read_text(encoding="utf-8")
        assert "\x00" not in text and "\x07" not in text and "web\u2400\u2407=1" in text
    assert report.servers[0]["server_name"] == "web\x00\x07=1"  # the data itself is exact


# --- the compliance task reads the anchor from the asset events -------------------------------


def events(*extras: dict, source_run_id: str = "manual__x") -> object:
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    from include.assets import PATCH_AUDIT

    return TriggeringAssetEventsAccessor.build(
        AssetEventDagRunReferenceResult(
            asset={"name": PATCH_AUDIT.name, "uri": PATCH_AUDIT.uri, "extra": {}},
            extra=extra,
            source_task_id="audit",
            source_dag_id="patch_fleet",
            source_run_id=source_run_id,
            source_map_index=-1,
            source_aliases=[],
            timestamp=datetime(2026, 11, 20, 10, minute, tzinfo=UTC),
        )
        for minute, extra in enumerate(extras)
    )


def extra_of(base: Path, position: int) -> dict:
    entry = read_chain(base)[position]
    return {"run_id": entry["run_id"], "manifest_sha256": entry["manifest_sha256"]}


def test_the_task_verifies_against_the_newest_triggering_event(base, monkeypatch):
    from patchflow.compliance import build_compliance

    monkeypatch.setenv("PATCHFLOW_REPORTS", str(base))
    result = build_compliance(
        {"as_of": "2026-11-20T12:00:00Z"},
        triggering_asset_events=events(extra_of(base, 0), extra_of(base, 1)),
    )
    assert result["evidence"]["anchor"]["status"] == "matches"
    assert result["evidence"]["anchor"]["run_id"] == SECOND


def test_the_task_fails_after_writing_the_report_when_the_anchor_does_not_match(base, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from patchflow.compliance import build_compliance

    monkeypatch.setenv("PATCHFLOW_REPORTS", str(base))
    announced = extra_of(base, 1)
    shutil.rmtree(folder_of(base, SECOND))
    chain = json.loads((base / "chain.json").read_text())
    chain["packs"].pop()
    (base / "chain.json").write_text(json.dumps(chain))
    with pytest.raises(AirflowFailException, match="evidence anchor mismatch"):
        build_compliance({"as_of": "2026-11-20T12:00:00Z"}, triggering_asset_events=events(announced))
    html = (base / "compliance" / "compliance.html").read_text()
    assert 'data-anchor="not_found"' in html


class _Inlet:
    """What ``inlet_events[PATCH_AUDIT]`` gives in a run started by hand (newest first)."""

    def __init__(self, found: list) -> None:
        self.found = found

    def ascending(self, ascending: bool = True) -> _Inlet:
        assert ascending is False
        return self

    def limit(self, limit: int) -> list:
        return self.found[:limit]


def test_a_run_started_by_hand_uses_the_latest_asset_event(base, monkeypatch):
    from include.assets import PATCH_AUDIT
    from patchflow.compliance import build_compliance

    monkeypatch.setenv("PATCHFLOW_REPORTS", str(base))
    latest = next(iter(events(extra_of(base, 1)).values()))[0]
    result = build_compliance({"as_of": "2026-11-20T12:00:00Z"}, inlet_events={PATCH_AUDIT: _Inlet([latest])})
    assert result["evidence"]["anchor"]["status"] == "matches"
    no_events = build_compliance({"as_of": "2026-11-20T12:00:00Z"}, inlet_events={PATCH_AUDIT: _Inlet([])})
    assert no_events["evidence"]["anchor"] is None
