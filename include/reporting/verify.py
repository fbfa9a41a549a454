"""Check a reports location: every file hash of every pack and every link of the chain.

Problems make the verdict fail (tampering, or damage that looks like it); warnings do not
(an incomplete pack left by a crash is expected and ignored by every report). The first
problem found walking the chain from its start is reported as ``first_broken``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from include.reporting.evidence_pack import (
    CHAIN,
    MANIFEST,
    RUNS,
    read_bytes,
    read_chain,
    sha256_hex,
)


@dataclass
class ChainVerdict:
    """Outcome of :func:`verify_chain`. ``ok`` is True iff ``problems`` is empty."""

    packs_checked: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_broken(self) -> str | None:
        return self.problems[0] if self.problems else None


def _check_pack(base: Any, pack_name: str, verdict: ChainVerdict) -> tuple[dict[str, Any] | None, str | None]:
    """Check one pack's files against its manifest; return (manifest, sha256 of manifest bytes)."""
    pack_dir = base / RUNS / pack_name
    where = f"{RUNS}/{pack_name}"
    if not (pack_dir / MANIFEST).exists():
        verdict.problems.append(f"{where}/{MANIFEST}: missing (pack deleted or unsealed)")
        return None, None
    raw = read_bytes(pack_dir / MANIFEST)
    try:
        manifest = json.loads(raw.decode("utf-8"))
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        verdict.problems.append(f"{where}/{MANIFEST}: not a readable manifest")
        return None, sha256_hex(raw)
    for name, expected in sorted(files.items()):
        path = pack_dir / name
        if not path.exists():
            verdict.problems.append(f"{where}/{name}: missing (listed in the manifest)")
            continue
        data = read_bytes(path)
        if sha256_hex(data) != expected["sha256"] or len(data) != expected["bytes"]:
            verdict.problems.append(
                f"{where}/{name}: modified (SHA-256 {sha256_hex(data)[:16]}..., "
                f"manifest says {expected['sha256'][:16]}...)"
            )
    for entry in sorted(pack_dir.iterdir(), key=lambda p: p.name):
        if entry.name != MANIFEST and entry.name not in files:
            verdict.problems.append(f"{where}/{entry.name}: not listed in the manifest (added afterwards)")
    return manifest, sha256_hex(raw)


def verify_chain(base: Any) -> ChainVerdict:
    """Verify every sealed pack under ``base`` and the hash chain linking them."""
    verdict = ChainVerdict()
    try:
        chain = read_chain(base)
    except (ValueError, RuntimeError) as exc:
        verdict.problems.append(f"{CHAIN}: unreadable ({exc})")
        return verdict
    runs = base / RUNS
    on_disk = sorted(entry.name for entry in runs.iterdir()) if runs.exists() else []
    if not chain and any((runs / name / MANIFEST).exists() for name in on_disk):
        verdict.problems.append(f"{CHAIN}: missing or empty, but sealed packs exist under {RUNS}/")
    previous: dict[str, str] | None = None
    indexed = set()
    for position, entry in enumerate(chain, start=1):
        run_id, pack_name = entry.get("run_id"), entry.get("pack")
        indexed.add(pack_name)
        manifest, digest = _check_pack(base, pack_name, verdict)
        verdict.packs_checked += 1
        label = f"chain link #{position} (run {run_id})"
        if manifest is not None:
            if manifest.get("run_id") != run_id:
                verdict.problems.append(f"{label}: manifest names run {manifest.get('run_id')!r}")
            if manifest.get("previous_manifest") != previous:
                verdict.problems.append(
                    f"{label}: broken link - previous_manifest is {manifest.get('previous_manifest')}, "
                    f"expected {previous}"
                )
        if digest is not None and digest != entry.get("manifest_sha256"):
            verdict.problems.append(
                f"{RUNS}/{pack_name}/{MANIFEST}: modified (SHA-256 {digest[:16]}..., "
                f"{CHAIN} says {str(entry.get('manifest_sha256'))[:16]}...)"
            )
        # the next link must point at the manifest as it really is, not as the index says
        previous = {"run_id": run_id, "sha256": digest or str(entry.get("manifest_sha256"))}
    for name in on_disk:
        if name in indexed:
            continue
        if not (runs / name / MANIFEST).exists():
            verdict.warnings.append(f"{RUNS}/{name}: incomplete pack (no manifest), ignored")
            continue
        manifest = json.loads(read_bytes(runs / name / MANIFEST).decode("utf-8"))
        if previous is not None and manifest.get("previous_manifest") == previous:
            verdict.warnings.append(f"{RUNS}/{name}: sealed but not yet indexed (a retry will index it)")
        else:
            verdict.problems.append(
                f"{RUNS}/{name}: sealed pack missing from {CHAIN} (removed from the chain)"
            )
    return verdict


def format_verdict(base: Any, verdict: ChainVerdict) -> str:
    """The human-readable verdict printed by the CLI."""
    lines = [f"Evidence chain at {base}: {verdict.packs_checked} pack(s) checked."]
    lines += [f"warning: {warning}" for warning in verdict.warnings]
    if verdict.ok:
        lines.append("VERIFIED: every file hash and every chain link is intact.")
    else:
        lines += [f"TAMPERED: {problem}" for problem in verdict.problems]
        lines.append(f"FAILED: {len(verdict.problems)} problem(s); first broken: {verdict.first_broken}")
    return "\n".join(lines)
