"""Where a run's artifacts live, and how they are written so that nothing is half-written.

Artifacts (inventory, plan, rollout ledger, results) are files under a configurable base
location, one folder per DAG run. XCom only ever carries references to them and counts, so
a 10,000-server inventory never travels through the metadata database.

The base may be a ``pathlib.Path`` or an Airflow ``ObjectStoragePath`` (``s3://``, ``gs://``,
``file://``): only ``/``, ``open``, ``exists``, ``mkdir`` and ``iterdir`` are used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, Protocol

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: A value is used verbatim as a folder name only if it is already this plain: lower case (so
#: two names never collide on a case-insensitive file system), no ``:``, no leading ``.``.
_VERBATIM = re.compile(r"[a-z0-9_-][a-z0-9._-]*")
#: Separates the readable prefix from the hash. Never part of a verbatim name, so a hashed name
#: can never equal a verbatim one.
HASH_MARK = "~"
HASH_CHARS = 16
MAX_SEGMENT = 200


class PathLike(Protocol):
    """The subset of pathlib/ObjectStoragePath that artifacts need."""

    def __truediv__(self, other: str) -> PathLike: ...
    def open(self, mode: str = ...) -> Any: ...
    def exists(self) -> bool: ...
    def mkdir(self, parents: bool = ..., exist_ok: bool = ...) -> None: ...


def safe_segment(value: str) -> str:
    """Make a run id (or DAG id) one path segment, on any file system or object store, injectively.

    A plain value (``[a-z0-9._-]``, no leading ``.``, at most 200 characters) is used as is.
    Anything else gets a readable prefix (``:`` as ``-``, other unsafe characters as ``_``, a
    leading ``.`` as ``_``) plus ``~`` and 16 hex digits of the SHA-256 of the exact value:
    ``manual__2026-12-01T10:00:00`` and ``manual__2026-12-01T10-00-00`` get different folders,
    and so do two long ids sharing their first 200 characters. Run ids come from users: ``..``
    never climbs out of the base folder.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a path segment needs a non-empty string, got {value!r}")
    if len(value) <= MAX_SEGMENT and _VERBATIM.fullmatch(value):
        return value
    readable = _UNSAFE.sub("_", value.replace(":", "-"))
    if readable.startswith("."):
        readable = "_" + readable[1:]
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    return f"{readable[: MAX_SEGMENT - HASH_CHARS - len(HASH_MARK)]}{HASH_MARK}{digest}"


def run_folder(base: PathLike, dag_id: str, run_id: str) -> PathLike:
    """The folder holding every artifact of one DAG run."""
    return base / safe_segment(dag_id) / safe_segment(run_id)


def local_path(path: Any) -> Path | None:
    """The local file system path behind ``path`` (a ``Path`` or a ``file://`` ObjectStoragePath)."""
    if isinstance(path, Path):
        return path
    if getattr(path, "protocol", None) in ("file", "local"):
        return Path(str(path.path))
    return None


def _replace_atomically(target: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, ``os.replace``, fsync of the folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    """Write a file so that a reader sees the old content or the new one, never a part.

    The one writer of every artifact and evidence file. On a local file system (also through a
    ``file://`` ObjectStoragePath): temp file, fsync, atomic rename (survives ``kill -9``). On
    object storage a single PUT on close is already all-or-nothing.
    """
    local = local_path(path)
    if local is not None:
        _replace_atomically(local, data)
        return
    parent = getattr(path, "parent", None)
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(data)


def write_json(path: PathLike, data: Any, *, compact: bool = False) -> None:
    """Write a JSON artifact atomically (see :func:`write_bytes_atomic`).

    ``compact``: no indentation and keys in their own order — the same JSON value, written by
    the C encoder about ten times faster, for files rewritten often at fleet scale (the ledger).
    """
    if compact:
        payload = json.dumps(data, separators=(",", ":"), default=str)
        write_bytes_atomic(path, payload.encode("utf-8"))
        return
    payload = json.dumps(data, indent=1, sort_keys=True, default=str)
    write_bytes_atomic(path, payload.encode("utf-8"))


def read_json(path: PathLike) -> Any:
    """Read a JSON artifact, naming the file when it is missing or corrupt."""
    try:
        with path.open("r") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"artifact {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"artifact {path} is not valid JSON: {exc}") from None
