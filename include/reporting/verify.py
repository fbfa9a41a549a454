"""Check a reports location: every pack of the chain, every file hash, every link, and the head.

What is checked, and why each matters:

* the location itself: a missing path, a file, a folder with neither ``chain.json`` nor
  ``runs/``, or one without a single pack is *refused* (nothing was verified, so nothing may
  be called verified);
* ``chain.json`` and every ``manifest.json`` are parsed defensively: each malformed item is
  named, never a traceback;
* every name read from them must be one plain name inside its folder: ``../`` or an absolute
  path is refused and never followed (so are symlinks leading out of the location);
* every file listed in a manifest exists with its recorded size and SHA-256, and no file was
  added to a sealed pack;
* each manifest's hash is the one ``chain.json`` records, and each manifest names the previous
  manifest as it really is (the hash chain);
* every sealed pack folder under ``runs/`` is listed in the chain (a forged pack dropped into
  ``runs/`` is caught);
* with ``expect_head`` (the manifest hash published in the ``patch_audit`` asset event, kept
  outside this storage), the newest pack must have exactly that hash: a removed or re-sealed
  newest pack is caught, which no check inside the storage alone can do.

Problems make the verdict fail; warnings do not (an incomplete pack left by a crash is expected
and ignored by every report). Each problem names the pack it makes untrustworthy, so the
compliance report can leave exactly those packs out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from include.artifacts import local_path
from include.reporting.evidence_pack import (
    CHAIN,
    MANIFEST,
    RUNS,
    is_plain_name,
    is_sha256,
    parse_chain,
    read_bytes,
    sha256_hex,
)


class ProblemKind(StrEnum):
    """What kind of damage a problem is."""

    MALFORMED_CHAIN = "malformed_chain"
    MISSING_CHAIN = "missing_chain"
    MALFORMED_MANIFEST = "malformed_manifest"
    MISSING_PACK = "missing_pack"
    MISSING_FILE = "missing_file"
    HASH_MISMATCH = "hash_mismatch"
    ADDED_FILE = "added_file"
    BROKEN_LINK = "broken_link"
    WRONG_RUN = "wrong_run"
    DUPLICATE = "duplicate"
    OUTSIDE_CHAIN = "outside_chain"
    PATH_ESCAPE = "path_escape"
    UNREADABLE = "unreadable"
    HEAD_MISMATCH = "head_mismatch"


class VerifyStatus(StrEnum):
    """The verdict; :meth:`VerifyResult.exit_code` maps it to the CLI's exit status."""

    VERIFIED = "verified"
    TAMPERED = "tampered"
    REFUSED = "refused"


class AnchorStatus(StrEnum):
    """How the expected head (the asset event's manifest hash) relates to the chain."""

    MATCHES = "matches"
    BEHIND = "behind"
    NOT_FOUND = "not_found"


EXIT_CODES = {VerifyStatus.VERIFIED: 0, VerifyStatus.TAMPERED: 1, VerifyStatus.REFUSED: 2}


@dataclass(frozen=True)
class Problem:
    """One broken or malformed item. ``position`` (1-based, in the chain) or ``pack`` (folder
    name, for packs outside the chain) says which pack it makes untrustworthy, if any."""

    kind: ProblemKind
    where: str
    detail: str
    position: int | None = None
    pack: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


@dataclass(frozen=True)
class AnchorCheck:
    """The expected head, and where (1-based position) the chain holds it, if anywhere."""

    expected: str
    status: AnchorStatus
    position: int | None
    chain_length: int

    @property
    def packs_after(self) -> int:
        return 0 if self.position is None else self.chain_length - self.position


@dataclass(frozen=True)
class PackVerdict:
    """One pack: its place in the chain (None: outside it), identity and problems."""

    position: int | None
    run_id: str | None
    pack: str
    manifest_sha256: str | None
    file_hashes: Mapping[str, str]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return self.position is not None and not self.problems

    @property
    def reasons(self) -> list[str]:
        return [str(problem) for problem in self.problems]


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_reports`, shared by the CLI and the compliance report."""

    location: str
    refused: str | None = None
    head: str | None = None
    packs: list[PackVerdict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    anchor: AnchorCheck | None = None

    @property
    def status(self) -> VerifyStatus:
        if self.refused is not None:
            return VerifyStatus.REFUSED
        return VerifyStatus.TAMPERED if self.problems else VerifyStatus.VERIFIED

    @property
    def ok(self) -> bool:
        return self.status is VerifyStatus.VERIFIED

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def packs_checked(self) -> int:
        return sum(1 for verdict in self.packs if verdict.position is not None)

    @property
    def first_broken(self) -> str | None:
        return str(self.problems[0]) if self.problems else None

    @property
    def chain_packs(self) -> list[PackVerdict]:
        return [verdict for verdict in self.packs if verdict.position is not None]


ChainVerdict = VerifyResult  # the name earlier callers used


@dataclass
class _Walk:
    """State of one verification: where, and what was found so far."""

    base: Any
    result: VerifyResult
    digests: dict[int, str | None] = field(default_factory=dict)
    file_hashes: dict[int, dict[str, str]] = field(default_factory=dict)

    def problem(self, kind: ProblemKind, where: str, detail: str, **owner: Any) -> None:
        self.result.problems.append(Problem(kind, where, detail, **owner))


def _inside(base: Any, path: Any) -> bool:
    """True unless ``path`` resolves (through a symlink) outside the reports location."""
    local_base, local = local_path(base), local_path(path)
    if local_base is None or local is None:
        return True  # object stores have no symlinks; names were already checked
    return Path(local).resolve().is_relative_to(Path(local_base).resolve())


def _read(walk: _Walk, path: Any, where: str, **owner: Any) -> bytes | None:
    """Read a file inside the location; name the problem (and return None) when that fails."""
    if not _inside(walk.base, path):
        walk.problem(
            ProblemKind.PATH_ESCAPE, where, "leads outside the reports location (not followed)", **owner
        )
        return None
    try:
        return read_bytes(path)
    except OSError as exc:
        walk.problem(ProblemKind.UNREADABLE, where, f"unreadable ({type(exc).__name__}: {exc})", **owner)
        return None


def location_refusal(base: Any) -> str | None:
    """Why ``base`` cannot be verified at all, or None when it looks like a reports location."""
    try:
        if not base.exists():
            return f"{base} does not exist"
        if base.is_file():
            return f"{base} is a file, not a reports folder"
        if not (base / CHAIN).exists() and not (base / RUNS).exists():
            return f"{base} is not a reports folder: it holds neither {CHAIN} nor {RUNS}/"
    except OSError as exc:
        return f"{base} cannot be read ({type(exc).__name__}: {exc})"
    return None


def _manifest_problems(manifest: Any) -> tuple[dict[str, dict[str, Any]], list[tuple[ProblemKind, str]]]:
    """The well-formed file entries of a manifest and everything malformed in it."""
    if not isinstance(manifest, Mapping) or not isinstance(manifest.get("files"), Mapping):
        return {}, [(ProblemKind.MALFORMED_MANIFEST, "not a manifest (expected an object with 'files')")]
    problems: list[tuple[ProblemKind, str]] = []
    files: dict[str, dict[str, Any]] = {}
    for name, spec in manifest["files"].items():
        if not is_plain_name(name) or name == MANIFEST:
            problems.append(
                (ProblemKind.PATH_ESCAPE, f"lists file {name!r}, not a plain name in the pack (refused)")
            )
        elif (
            not isinstance(spec, Mapping)
            or not is_sha256(spec.get("sha256"))
            or isinstance(spec.get("bytes"), bool)
            or not isinstance(spec.get("bytes"), int)
        ):
            problems.append(
                (ProblemKind.MALFORMED_MANIFEST, f"entry for {name!r} needs a sha256 and a byte count")
            )
        else:
            files[name] = dict(spec)
    if not isinstance(manifest.get("run_id"), str):
        problems.append((ProblemKind.MALFORMED_MANIFEST, "run_id is missing or not a string"))
    link = manifest.get("previous_manifest")
    if link is not None and (
        not isinstance(link, Mapping)
        or not isinstance(link.get("run_id"), str)
        or not is_sha256(link.get("sha256"))
    ):
        problems.append(
            (ProblemKind.MALFORMED_MANIFEST, "previous_manifest is neither null nor a run id + sha256")
        )
    return files, problems


def _check_files(
    walk: _Walk, pack_dir: Any, where: str, files: Mapping[str, Mapping[str, Any]], owner: dict
) -> None:
    """Every listed file exists with its size and hash; nothing was added next to them."""
    for name, expected in sorted(files.items()):
        path = pack_dir / name
        if not path.exists():
            walk.problem(
                ProblemKind.MISSING_FILE, f"{where}/{name}", "missing (listed in the manifest)", **owner
            )
            continue
        data = _read(walk, path, f"{where}/{name}", **owner)
        if data is None:
            continue
        actual = sha256_hex(data)
        if actual != expected["sha256"] or len(data) != expected["bytes"]:
            walk.problem(
                ProblemKind.HASH_MISMATCH,
                f"{where}/{name}",
                f"modified (SHA-256 {actual[:16]}..., manifest says {expected['sha256'][:16]}...)",
                **owner,
            )
    for entry in sorted(pack_dir.iterdir(), key=lambda p: p.name):
        if entry.name != MANIFEST and entry.name not in files:
            walk.problem(
                ProblemKind.ADDED_FILE,
                f"{where}/{entry.name}",
                "not listed in the manifest (added afterwards)",
                **owner,
            )


def _check_pack(walk: _Walk, pack_name: str, owner: dict) -> tuple[dict[str, Any] | None, str | None]:
    """Check one pack folder against its manifest; return (manifest, SHA-256 of its bytes)."""
    pack_dir = walk.base / RUNS / pack_name
    where = f"{RUNS}/{pack_name}"
    if not _inside(walk.base, pack_dir):
        walk.problem(
            ProblemKind.PATH_ESCAPE, where, "leads outside the reports location (not followed)", **owner
        )
        return None, None
    if not (pack_dir / MANIFEST).exists():
        walk.problem(
            ProblemKind.MISSING_PACK, f"{where}/{MANIFEST}", "missing (pack deleted or unsealed)", **owner
        )
        return None, None
    raw = _read(walk, pack_dir / MANIFEST, f"{where}/{MANIFEST}", **owner)
    if raw is None:
        return None, None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        walk.problem(
            ProblemKind.MALFORMED_MANIFEST, f"{where}/{MANIFEST}", f"not valid JSON ({exc})", **owner
        )
        return None, sha256_hex(raw)
    files, problems = _manifest_problems(manifest)
    for kind, detail in problems:
        walk.problem(kind, f"{where}/{MANIFEST}", detail, **owner)
    if files or not problems:
        _check_files(walk, pack_dir, where, files, owner)
    if "position" in owner:
        walk.file_hashes[owner["position"]] = {name: spec["sha256"] for name, spec in files.items()}
    return (manifest if isinstance(manifest, dict) else None), sha256_hex(raw)


def _check_identity(
    walk: _Walk, position: int, entry: Mapping[str, Any], manifest: Mapping[str, Any]
) -> None:
    """The manifest belongs to the run and folder the chain says it does."""
    label = f"chain link #{position} (run {entry['run_id']})"
    if manifest.get("run_id") != entry["run_id"]:
        walk.problem(
            ProblemKind.WRONG_RUN, label, f"manifest names run {manifest.get('run_id')!r}", position=position
        )
    if "pack" in manifest and manifest["pack"] != entry["pack"]:
        walk.problem(
            ProblemKind.WRONG_RUN,
            label,
            f"manifest was sealed in folder {manifest['pack']!r}, found in {entry['pack']!r} "
            "(moved or copied)",
            position=position,
        )


def _check_link(
    walk: _Walk, position: int, entry: Mapping[str, Any], manifest: Mapping[str, Any], previous: Any
) -> None:
    """The manifest names its predecessor as it really is; a break distrusts both packs."""
    recorded = manifest.get("previous_manifest")
    if recorded == previous:
        return
    label = f"chain link #{position} (run {entry['run_id']})"
    detail = f"broken link - previous_manifest is {recorded}, expected {previous}"
    walk.problem(ProblemKind.BROKEN_LINK, label, detail, position=position)
    if position > 1:
        walk.problem(
            ProblemKind.BROKEN_LINK,
            f"chain link #{position - 1}",
            f"its manifest is not the one the next pack (run {entry['run_id']}) sealed after (re-sealed?)",
            position=position - 1,
        )


def _walk_chain(walk: _Walk, entries: list[dict[str, Any] | None]) -> set[str]:
    """Check every chain entry in order; return the pack folder names the chain lists."""
    _unknown = object()
    previous: Any = None
    listed: set[str] = set()
    seen_runs: set[str] = set()
    for position, entry in enumerate(entries, start=1):
        if entry is None:  # malformed: named by parse_chain; never followed
            walk.digests[position], previous = None, _unknown
            continue
        owner = {"position": position}
        if entry["run_id"] in seen_runs or entry["pack"] in listed:
            walk.problem(
                ProblemKind.DUPLICATE,
                f"chain link #{position} (run {entry['run_id']})",
                "run or pack listed twice",
                **owner,
            )
        seen_runs.add(entry["run_id"])
        listed.add(entry["pack"])
        manifest, digest = _check_pack(walk, entry["pack"], owner)
        walk.digests[position] = digest
        if manifest is not None:
            _check_identity(walk, position, entry, manifest)
            if previous is not _unknown:
                _check_link(walk, position, entry, manifest, previous)
        if digest is not None and digest != entry["manifest_sha256"]:
            walk.problem(
                ProblemKind.HASH_MISMATCH,
                f"{RUNS}/{entry['pack']}/{MANIFEST}",
                f"modified (SHA-256 {digest[:16]}..., {CHAIN} says {entry['manifest_sha256'][:16]}...)",
                **owner,
            )
        # the next link must point at the manifest as it really is, not as the index says
        previous = {"run_id": entry["run_id"], "sha256": digest or entry["manifest_sha256"]}
    return listed


def _check_unlisted(walk: _Walk, listed: set[str], chain_readable: bool) -> list[str]:
    """Pack folders under ``runs/`` the chain does not list; return the sealed ones."""
    runs = walk.base / RUNS
    if not runs.exists():
        return []
    if not runs.is_dir():
        walk.problem(ProblemKind.ADDED_FILE, RUNS, "is a file where the pack folders belong")
        return []
    sealed = []
    for entry in sorted(runs.iterdir(), key=lambda p: p.name):
        name, where = entry.name, f"{RUNS}/{entry.name}"
        if name in listed:
            continue
        if not _inside(walk.base, entry):
            walk.problem(
                ProblemKind.PATH_ESCAPE, where, "leads outside the reports location (not followed)", pack=name
            )
        elif not entry.is_dir():
            walk.problem(ProblemKind.ADDED_FILE, where, "a file where only pack folders belong", pack=name)
        elif not (entry / MANIFEST).exists():
            walk.result.incomplete.append(name)
            walk.result.warnings.append(f"{where}: incomplete pack (no manifest), ignored")
        elif chain_readable:
            sealed.append(name)
            walk.problem(
                ProblemKind.OUTSIDE_CHAIN,
                where,
                f"sealed pack not listed in {CHAIN} (forged, removed from the chain, or its sealing never "
                "finished: re-run that run's audit task)",
                pack=name,
            )
        else:  # the chain cannot say whether it belongs: still check what the pack says of itself
            sealed.append(name)
            _check_pack(walk, name, {"pack": name})
    return sealed


def _check_anchor(walk: _Walk, entries: list[dict[str, Any] | None], expected: str) -> AnchorCheck:
    """Compare the expected head with the manifests as they really are."""
    length = len(entries)
    found = [position for position, digest in walk.digests.items() if digest == expected]
    if length and walk.digests.get(length) == expected:
        return AnchorCheck(expected, AnchorStatus.MATCHES, length, length)
    newest = entries[-1] if entries else None
    newest_text = (
        f"the newest pack is run {newest['run_id']} with {str(walk.result.head)[:16]}..."
        if newest is not None
        else "the chain lists no readable pack"
    )
    if found:
        position = found[-1]
        after = [str(entry["run_id"]) for entry in entries[position:] if entry is not None]
        walk.problem(
            ProblemKind.HEAD_MISMATCH,
            CHAIN,
            f"the expected head {expected[:16]}... is pack #{position}, but {length - position} pack(s) were "
            f"sealed after it: {', '.join(after)}",
        )
        return AnchorCheck(expected, AnchorStatus.BEHIND, position, length)
    walk.problem(
        ProblemKind.HEAD_MISMATCH,
        CHAIN,
        f"no pack has the expected head manifest SHA-256 {expected}; {newest_text}: the expected pack was "
        "removed or re-sealed",
    )
    return AnchorCheck(expected, AnchorStatus.NOT_FOUND, None, length)


def _verdicts(walk: _Walk, entries: list[dict[str, Any] | None], outside: list[str]) -> list[PackVerdict]:
    """One verdict per chain entry (in order), then one per sealed pack outside the chain."""
    problems = walk.result.problems
    verdicts = []
    for position, entry in enumerate(entries, start=1):
        mine = tuple(p for p in problems if p.position == position)
        verdicts.append(
            PackVerdict(
                position,
                None if entry is None else entry["run_id"],
                "?" if entry is None else entry["pack"],
                walk.digests.get(position),
                walk.file_hashes.get(position, {}),
                mine,
            )
        )
    for name in outside:
        mine = tuple(p for p in problems if p.position is None and p.pack == name)
        verdicts.append(PackVerdict(None, None, name, None, {}, mine))
    return verdicts


def _load_chain(walk: _Walk) -> tuple[list[dict[str, Any] | None], bool]:
    """Chain entries and whether the chain could be read as a whole (a missing one can)."""
    path = walk.base / CHAIN
    if not path.exists():
        return [], True
    raw = _read(walk, path, CHAIN)
    if raw is None:
        return [], False
    entries, problems = parse_chain(raw)
    for position, detail in problems:
        walk.problem(ProblemKind.MALFORMED_CHAIN, CHAIN, detail, position=position)
    readable = bool(entries) or not problems
    return entries, readable


def verify_reports(base: Any, *, expect_head: str | None = None) -> VerifyResult:
    """Verify every pack under ``base`` and the chain linking them; see the module docstring."""
    result = VerifyResult(location=str(base))
    if expect_head is not None and not is_sha256(expect_head.strip().lower()):
        result.refused = f"--expect-head must be a SHA-256 (64 hex digits), got {expect_head!r}"
        return result
    result.refused = location_refusal(base)
    if result.refused is not None:
        return result
    walk = _Walk(base, result)
    try:
        entries, chain_readable = _load_chain(walk)
        listed = _walk_chain(walk, entries)
        outside = _check_unlisted(walk, listed, chain_readable)
    except OSError as exc:  # e.g. a folder without read permission: name it, never a traceback
        walk.problem(ProblemKind.UNREADABLE, str(base), f"verification stopped ({type(exc).__name__}: {exc})")
        return result
    if not entries and outside and chain_readable:
        walk.problem(
            ProblemKind.MISSING_CHAIN, CHAIN, f"missing or empty, but sealed packs exist under {RUNS}/"
        )
    if not entries and not outside and not result.problems:
        result.refused = f"{base} holds no sealed evidence pack: nothing to verify"
        return result
    result.head = walk.digests.get(len(entries)) if entries else None
    if expect_head is not None:
        result.anchor = _check_anchor(walk, entries, expect_head.strip().lower())
    result.packs = _verdicts(walk, entries, outside)
    return result


def verify_chain(base: Any, *, expect_head: str | None = None) -> VerifyResult:
    """The earlier name of :func:`verify_reports`."""
    return verify_reports(base, expect_head=expect_head)


def format_result(result: VerifyResult) -> str:
    """The human-readable verdict printed by the CLI (stdout)."""
    lines = [f"Evidence chain at {result.location}: {result.packs_checked} pack(s) checked."]
    lines += [f"warning: {warning}" for warning in result.warnings]
    if result.ok:
        lines.append(f"VERIFIED: every file hash and every chain link is intact; head {result.head}.")
        if result.anchor is None:
            lines.append(
                "note: the head was not compared with an anchor (pass --expect-head <manifest sha256>)."
            )
        else:
            lines.append("The newest pack has the expected head manifest hash.")
        return "\n".join(lines)
    lines += [f"TAMPERED: {problem}" for problem in result.problems]
    lines.append(f"FAILED: {len(result.problems)} problem(s); first broken: {result.first_broken}")
    return "\n".join(lines)


def format_verdict(base: Any, verdict: VerifyResult) -> str:
    """The earlier name of :func:`format_result` (``base`` is taken from the result)."""
    return format_result(verdict)
