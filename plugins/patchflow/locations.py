"""Where patchflow keeps run artifacts and reports: local folders or object storage.

Both are configurable by environment (so docker-compose, `make demo` and tests can point them
somewhere else) and accept either a local path or a URL (``s3://bucket/patchflow``), which
becomes an ``ObjectStoragePath`` once the matching provider is installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from include.artifacts import PathLike, run_folder

ARTIFACTS_ENV = "PATCHFLOW_ARTIFACTS"
REPORTS_ENV = "PATCHFLOW_REPORTS"


def as_location(value: str):
    """A local ``Path`` for plain paths and ``file://`` URLs, an ``ObjectStoragePath`` otherwise.

    Artifact references travel through XCom as strings; this turns them back into paths.
    """
    if "://" in value and not value.startswith("file://"):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(value)
    return Path(value.removeprefix("file://"))


def _location(env: str, default_leaf: str):
    value = os.environ.get(env, "").strip()
    if not value:
        home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
        return Path(home) / "patchflow" / default_leaf
    return as_location(value)


def artifacts_base():
    """Base location of per-run artifacts (inventory, plan, rollout ledger, results)."""
    return _location(ARTIFACTS_ENV, "artifacts")


def reports_base():
    """Base location of evidence packs and compliance reports."""
    return _location(REPORTS_ENV, "reports")


def resolve_run_folder(plan_path: str, artifacts_base: str | None, context: Any) -> PathLike:
    """Artifacts of this run: ``artifacts_base/<dag_id>/<run_id>`` or, by default, the plan's folder.

    The rollout and the maintenance release both locate the run's ledger this way.
    """
    if artifacts_base:
        return run_folder(as_location(artifacts_base), context["dag"].dag_id, context["run_id"])
    return as_location(plan_path).parent
