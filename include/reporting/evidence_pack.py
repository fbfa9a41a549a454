"""Per-run evidence packs, written once and chained by SHA-256 (tamper evidence).

Layout under a reports location ``base`` (a ``pathlib.Path`` or an Airflow
``ObjectStoragePath``; only ``/``, ``open``, ``exists``, ``mkdir``, ``iterdir`` and ``name``
are used, so ``s3://`` or ``gs://`` work once the matching provider is installed)::

    <base>/chain.json                      packs in the order they were sealed
    <base>/runs/<safe run id>/audit.json
                             /audit.csv
                             /validation.json
                             /report.html
                             /manifest.json  sealed last: the pack is complete iff it exists

``manifest.json`` lists the SHA-256 and size of every other file and the run id + SHA-256 of
the previous pack's ``manifest.json``; its own hash is what the next manifest (and
``chain.json``) records. Changing any byte of any pack breaks a hash or a link that
:func:`include.reporting.verify.verify_chain` reports. The newest manifest hash is also
published in the Airflow asset event (:func:`asset_extra`), an anchor outside this storage.

Pack folders are named by :func:`include.artifacts.safe_segment` (injective: two run ids never
share a folder), but readers find a pack through ``chain.json``, never by guessing its name.
Every file, ``chain.json`` included, is replaced atomically (temp file, fsync, rename).

Sealing is once-only: writing a run whose manifest exists returns the existing pack
untouched (Airflow task retries are harmless); a pack without manifest (crash mid-write)
is rewritten. Packs must be sealed one at a time per reports location (the chain has a
single tail): run the sealing task in a one-slot pool or with ``max_active_runs=1``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from include.artifacts import MAX_SEGMENT, local_path, safe_segment, write_bytes_atomic
from include.reporting.audit_document import audit_csv, build_audit_document
from include.reporting.html_report import render_report_html
from include.timefmt import utc_text

MANIFEST = "manifest.json"
CHAIN = "chain.json"
RUNS = "runs"
PACK_FILES = ("audit.json", "audit.csv", "validation.json", "report.html")
MANIFEST_SCHEMA = 1
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._~-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class EvidencePackError(RuntimeError):
    """The reports location is in a state where sealing a pack would break the chain."""


@dataclass(frozen=True)
class EvidencePack:
    """A sealed pack. ``created`` is False when an existing pack was returned untouched."""

    run_id: str
    path: Any
    manifest: dict[str, Any]
    manifest_sha256: str
    created: bool

    @property
    def validation_success(self) -> bool:
        return bool(self.manifest["validation_success"])

    @property
    def report_path(self) -> Any:
        return self.path / "report.html"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_sha256(value: Any) -> bool:
    """A lower-case hex SHA-256 digest, as every manifest and chain entry records it."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def is_plain_name(value: Any) -> bool:
    """One file or folder name that stays inside its folder: no ``/``, ``..``, absolute path.

    Names read from a manifest or ``chain.json`` are checked with this before any path is built
    from them, so a tampered index can never make a reader (or ``verify``) leave the reports
    location.
    """
    return isinstance(value, str) and len(value) <= MAX_SEGMENT and _PLAIN_NAME.fullmatch(value) is not None


def read_bytes(path: Any) -> bytes:
    with path.open("rb") as handle:
        return handle.read()


def read_json(path: Any) -> Any:
    return json.loads(read_bytes(path).decode("utf-8"))


def json_bytes(value: Any, *, sort_keys: bool = False) -> bytes:
    """Pretty UTF-8 JSON; text that UTF-8 cannot carry (lone surrogates from an API) is escaped."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=sort_keys) + "\n"
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(value, indent=2, ensure_ascii=True, sort_keys=sort_keys) + "\n").encode("ascii")


def safe_run_id(run_id: str) -> str:
    """The pack folder name of a run: the same injective rule as the run's artifact folder."""
    if not isinstance(run_id, str) or not run_id.strip():
        raise ValueError(f"run_id must be a non-empty string, got {run_id!r}")
    return safe_segment(run_id)


def chain_entry_problems(entry: Any) -> list[str]:
    """What is wrong with one ``chain.json`` entry (empty when it is well-formed)."""
    if not isinstance(entry, Mapping):
        return [f"is a {type(entry).__name__}, expected an object"]
    problems = []
    if not isinstance(entry.get("run_id"), str) or not entry.get("run_id"):
        problems.append(f"run_id {entry.get('run_id')!r} is not a non-empty string")
    if not is_plain_name(entry.get("pack")):
        problems.append(f"pack {entry.get('pack')!r} is not a folder name inside {RUNS}/ (refused)")
    if not is_sha256(entry.get("manifest_sha256")):
        problems.append(f"manifest_sha256 {entry.get('manifest_sha256')!r} is not a SHA-256 digest")
    return problems


def parse_chain(raw: bytes) -> tuple[list[dict[str, Any] | None], list[tuple[int | None, str]]]:
    """Entries of a ``chain.json`` (None for a malformed one) and every problem found in it,
    each with the 1-based position of its entry (None for the file as a whole)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        return [], [(None, f"not valid JSON ({type(exc).__name__}: {exc})")]
    if not isinstance(data, dict) or not isinstance(data.get("packs"), list):
        return [], [(None, "not a chain index (expected an object with a 'packs' list)")]
    entries: list[dict[str, Any] | None] = []
    problems: list[tuple[int | None, str]] = []
    for position, entry in enumerate(data["packs"], start=1):
        wrong = chain_entry_problems(entry)
        problems += [(position, f"entry #{position}: {detail}") for detail in wrong]
        entries.append(None if wrong else dict(entry))
    return entries, problems


def read_chain(base: Any) -> list[dict[str, Any]]:
    """The chain index (empty when no pack was ever sealed); any malformed part is refused."""
    path = base / CHAIN
    if not path.exists():
        return []
    entries, problems = parse_chain(read_bytes(path))
    if problems:
        raise EvidencePackError(f"{CHAIN} is malformed: " + "; ".join(detail for _, detail in problems))
    return [entry for entry in entries if entry is not None]


def _write_chain(base: Any, packs: list[dict[str, Any]]) -> None:
    write_bytes_atomic(base / CHAIN, json_bytes({"schema_version": MANIFEST_SCHEMA, "packs": packs}))


def complete_packs(base: Any) -> list[str]:
    """Names of pack folders under ``runs/`` that have a manifest."""
    runs = base / RUNS
    if not runs.exists():
        return []
    return sorted(entry.name for entry in runs.iterdir() if (entry / MANIFEST).exists())


def _link(entry: Mapping[str, Any] | None) -> dict[str, str] | None:
    return None if entry is None else {"run_id": entry["run_id"], "sha256": entry["manifest_sha256"]}


def _existing(base: Any, pack_dir: Any, run_id: str) -> EvidencePack:
    """Return a sealed pack as is, indexing it if a crash happened between seal and index."""
    raw = read_bytes(pack_dir / MANIFEST)
    manifest = json.loads(raw.decode("utf-8"))
    if manifest.get("run_id") != run_id:
        raise EvidencePackError(
            f"pack folder {pack_dir.name!r} holds run {manifest.get('run_id')!r}, not {run_id!r}"
        )
    digest = sha256_hex(raw)
    chain = read_chain(base)
    if not any(entry["run_id"] == run_id for entry in chain):
        if manifest.get("previous_manifest") != _link(chain[-1] if chain else None):
            raise EvidencePackError(
                f"pack {pack_dir.name!r} is sealed but not in {CHAIN}, and the chain has moved on"
            )
        chain.append(
            {
                "run_id": run_id,
                "pack": pack_dir.name,
                "manifest_sha256": digest,
                "created_at": manifest["created_at"],
            }
        )
        _write_chain(base, chain)
    return EvidencePack(run_id, pack_dir, manifest, digest, created=False)


def _pack_folder(base: Any, run_id: str) -> Any:
    """Where the run's pack is: the folder the chain names, else the one it would be sealed in.

    Going through the chain keeps packs sealed under an earlier naming rule findable.
    """
    listed = next((entry for entry in read_chain(base) if entry["run_id"] == run_id), None)
    return base / RUNS / (listed["pack"] if listed else safe_run_id(run_id))


def find_pack(base: Any, run_id: str) -> EvidencePack | None:
    """The sealed pack of ``run_id``, or None if there is none (or only an incomplete one)."""
    pack_dir = _pack_folder(base, run_id)
    return _existing(base, pack_dir, run_id) if (pack_dir / MANIFEST).exists() else None


def _clear_unsealed(pack_dir: Any) -> None:
    """Remove what a crashed attempt left in an unsealed pack folder (e.g. a temp file).

    Only ever called before the seal exists: a sealed pack is never touched.
    """
    local = local_path(pack_dir)
    if local is None or not local.is_dir():
        return
    for entry in local.iterdir():
        if entry.name not in PACK_FILES and entry.is_file():
            entry.unlink()


def write_evidence_pack(
    base: Any,
    document: Mapping[str, Any],
    validation: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> EvidencePack:
    """Seal the pack of one run: audit.json/.csv, validation.json, report.html, manifest.json.

    Idempotent: if the run's pack is already sealed it is returned untouched. Every file is
    written atomically; ``manifest.json`` last (the seal), then ``chain.json``.
    """
    run_id = document["run"]["run_id"]
    pack_dir = _pack_folder(base, run_id)
    if (pack_dir / MANIFEST).exists():
        return _existing(base, pack_dir, run_id)
    chain = read_chain(base)
    if not chain and [name for name in complete_packs(base) if name != pack_dir.name]:
        raise EvidencePackError(
            f"{CHAIN} is missing but sealed packs exist under {RUNS}/: restore {CHAIN} from backup "
            "before sealing new packs (starting a new chain would hide the old one)"
        )
    pack_dir.mkdir(parents=True, exist_ok=True)
    _clear_unsealed(pack_dir)
    audit_bytes = json_bytes(document)
    audit_sha = sha256_hex(audit_bytes)
    contents = {
        "audit.json": audit_bytes,
        "audit.csv": audit_csv(document).encode("utf-8"),
        "validation.json": json_bytes(validation),
        "report.html": render_report_html(document, validation, audit_sha256=audit_sha).encode("utf-8"),
    }
    for name in PACK_FILES:
        write_bytes_atomic(pack_dir / name, contents[name])
    created_at = utc_text(now or datetime.now(UTC))
    summary = document["summary"]
    manifest = {
        "schema_version": MANIFEST_SCHEMA,
        "run_id": run_id,
        "pack": pack_dir.name,
        "created_at": created_at,
        "algorithm": "sha256",
        "files": {name: {"sha256": sha256_hex(data), "bytes": len(data)} for name, data in contents.items()},
        "previous_manifest": _link(chain[-1] if chain else None),
        "validation_success": bool(validation.get("success")),
        "counts": {"total": summary["total"], "by_state": summary["by_state"]},
    }
    manifest_bytes = json_bytes(manifest, sort_keys=True)
    write_bytes_atomic(pack_dir / MANIFEST, manifest_bytes)  # the seal: the pack is complete from here
    digest = sha256_hex(manifest_bytes)
    chain.append(
        {"run_id": run_id, "pack": pack_dir.name, "manifest_sha256": digest, "created_at": created_at}
    )
    _write_chain(base, chain)
    return EvidencePack(run_id, pack_dir, manifest, digest, created=True)


def build_evidence_pack(
    base: Any,
    rows: Iterable[Mapping[str, Any]],
    run: Mapping[str, Any],
    *,
    inventory_count: int,
    now: datetime | None = None,
) -> EvidencePack:
    """Build, validate and seal a run's pack in one call (what the audit task calls).

    Returns the pack even when validation failed - the failure is on record in
    validation.json and in the report's red banner; the caller then raises
    ``AuditValidationError`` (see :func:`raise_if_invalid`). A retry of a sealed run
    returns the sealed pack without re-validating.
    """
    from include.reporting.validation import validate_audit

    existing = find_pack(base, run["run_id"]) if isinstance(run, Mapping) and "run_id" in run else None
    if existing is not None:
        return existing
    document = build_audit_document(rows, run)
    validation = validate_audit(document, inventory_count=inventory_count)
    return write_evidence_pack(base, document, validation, now=now)


def raise_if_invalid(pack: EvidencePack) -> None:
    """Raise ``AuditValidationError`` with the stored verdict when the pack failed validation."""
    from include.reporting.validation import AuditValidationError

    if not pack.validation_success:
        raise AuditValidationError(read_json(pack.path / "validation.json"))


def asset_extra(pack: EvidencePack) -> dict[str, Any]:
    """JSON-able extra for the audit Asset event: run id, counts by state, manifest + hash."""
    return {
        "run_id": pack.run_id,
        "pack": str(pack.path),
        "manifest": str(pack.path / MANIFEST),
        "manifest_sha256": pack.manifest_sha256,
        "validation_success": pack.validation_success,
        "total": pack.manifest["counts"]["total"],
        "by_state": dict(pack.manifest["counts"]["by_state"]),
    }
