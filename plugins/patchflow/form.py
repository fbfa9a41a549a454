"""Trigger-form fields shared by the DAGs that patch: one wording, one type per setting.

Each schema fixes only the value's JSON type, "null" included (see ``dags/patch_fleet.py``:
Airflow reports a schema failure as raw JSON-schema text, and a type without "null" marks the
field required); the task that reads a value checks it and gives an empty one its default.
Functions, not constants: each DAG gets its own ``Param`` objects.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from include.patching.run_params import (
    DEFAULT_REVERT_ON_FAILURE,
    DEFAULT_SERVER_TIMEOUT_MINUTES,
    DEFAULT_SNAPSHOT,
    DEFAULT_SNAPSHOT_EXPIRATION_DAYS,
    DEFAULT_SNAPSHOT_KEEP,
)
from include.patching.snapshot_state import SnapshotMode


def account_alias(description: str) -> Param:
    return Param(None, type=["null", "string"], title="Account alias", description=description)


def patch_debug_mode(**extra: Any) -> Param:
    return Param(
        False,
        type=["null", "boolean"],
        title="Patch debug mode",
        description="Sets the Linux package's patch.debug.mode parameter.",
        **extra,
    )


def maintenance_mode(**extra: Any) -> Param:
    return Param(
        True,
        type=["null", "boolean"],
        title="Maintenance mode",
        description="Put servers into maintenance mode while they are patched (recommended by CLC).",
        **extra,
    )


def server_timeout_minutes(**extra: Any) -> Param:
    return Param(
        DEFAULT_SERVER_TIMEOUT_MINUTES,
        type=["null", "integer"],
        title="Per-server timeout (minutes)",
        description="A server whose patching has not completed by then ends as timed_out (1 to 1440).",
        **extra,
    )


def snapshot_params(**extra: Any) -> dict[str, Param]:
    """The snapshot safety net's four fields (``include.patching.snapshots``)."""
    return {
        "snapshot": Param(
            DEFAULT_SNAPSHOT,
            type=["null", "string"],
            examples=[m.value for m in SnapshotMode],
            title="Snapshot before patching",
            description=(
                "off: none. best_effort: snapshot each server after maintenance is on and before the "
                "package; a server that cannot have one (its owner's snapshot exists, over 1 TB, the "
                "snapshot failed) is patched without, the report says why. required: no snapshot, no "
                "patch (skipped_no_snapshot). An existing snapshot is never replaced or deleted."
            ),
            **extra,
        ),
        "snapshot_expiration_days": Param(
            DEFAULT_SNAPSHOT_EXPIRATION_DAYS,
            type=["null", "integer"],
            title="Snapshot expiration (days)",
            description="The platform deletes this run's snapshots after this many days (1 to 10).",
            **extra,
        ),
        "snapshot_keep": Param(
            DEFAULT_SNAPSHOT_KEEP,
            type=["null", "boolean"],
            title="Keep snapshots after success",
            description=(
                "Keep this run's snapshot of a successfully patched server until it expires, so it can "
                "still be reverted by hand. Off: deleted at once (a snapshot blocks CPU/RAM/disk changes)."
            ),
            **extra,
        ),
        "revert_on_failure": Param(
            DEFAULT_REVERT_ON_FAILURE,
            type=["null", "boolean"],
            title="Revert on failure",
            description=(
                "Restore a server whose patching failed or timed out to the snapshot this run took "
                "(ends reverted). Never restores a snapshot this run did not take. Needs snapshot on."
            ),
            **extra,
        ),
    }
