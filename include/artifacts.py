"""Where a run's artifacts live, and how they are written so that nothing is half-written.

Artifacts (inventory, plan, rollout ledger, results) are files under a configurable base
location, one folder per DAG run. XCom only ever carries references to them and counts, so
a 10,000-server inventory never travels through the metadata database.

The base may be a ``pathlib.Path`` or an Airflow ``ObjectStoragePath`` (``s3://``, ``gs://``,
``file://``): only ``/``, ``open``, ``exists``, ``mkdir`` and ``iterdir`` are used.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Protocol

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class PathLike(Protocol):
    """The subset of pathlib/ObjectStoragePath that artifacts need."""

    def __truediv__(self, other: str) -> PathLike: ...
    def open(self, mode: str = ...) -> Any: ...
    def exists(self) -> bool: ...
    def mkdir(self, parents: bool = ..., exist_ok: bool = ...) -> None: ...


def safe_segment(value: str) -> str:
    """Make a run id (or DAG id) usable as one path segment on any file system or object store.

    ``manual__2026-11-27T14:00:00+00:00`` becomes ``manual__2026-11-27T14-00-00_00-00``: ``:``
    turns into ``-``, anything else outside ``[A-Za-z0-9._-]`` into ``_``, and a leading ``.``
    into ``_`` (run ids come from users: ``..`` must never climb out of the base folder).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a path segment needs a non-empty string, got {value!r}")
    safe = _UNSAFE.sub("_", value.replace(":", "-"))
    if safe.startswith("."):
        safe = "_" + safe[1:]
    return safe[:200]


def run_folder(base: PathLike, dag_id: str, run_id: str) -> PathLike:
    """The folder holding every artifact of one DAG run."""
    return base / safe_segment(dag_id) / safe_segment(run_id)


def write_json(path: PathLike, data: Any) -> None:
    """Write JSON so that a reader never sees a partial file.

    On a local filesystem: temp file, fsync, atomic rename (survives ``kill -9``). On object
    storage a single PUT on close is already all-or-nothing.
    """
    payload = json.dumps(data, indent=1, sort_keys=True, default=str)
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return
    parent = getattr(path, "parent", None)
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fh.write(payload)


def read_json(path: PathLike) -> Any:
    """Read a JSON artifact, naming the file when it is missing or corrupt."""
    try:
        with path.open("r") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"artifact {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"artifact {path} is not valid JSON: {exc}") from None
