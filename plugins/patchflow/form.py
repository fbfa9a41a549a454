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


def staged_rollout(**extra: Any) -> dict[str, Param]:
    """The staged-rollout fields: stages, cluster limit, health check, approval (types only;
    preflight checks the rules, ``include.patching.run_params``)."""
    return {
        "waves": Param(
            [],
            type=["null", "array"],
            items={"type": "string"},
            title="Stages (waves)",
            description=(
                "Patch each package in stages, one size per line: a count (1) or a percentage of its "
                "servers (20%), e.g. 1, 5, 20%, 100%. What is left over forms one more stage. A stage "
                "starts only when the previous one has ended and passed its gate (no unhealthy server, "
                "error budget intact). Empty: one stage."
            ),
            **extra,
        ),
        "max_per_cluster": Param(
            1,
            type=["null", "integer"],  # a number field (a mixed type draws a JSON text box)
            title="Max in flight per cluster",
            description="Servers of one cluster patched at once (at least 1).",
            **extra,
        ),
        "cluster_by": Param(
            "field:cluster",
            type=["null", "string"],
            title="Clusters",
            description=(
                "Which servers serve together: 'field:<custom field>' (servers with the same value of "
                "that CLC custom field; default field:cluster), 'group' (same CLC group) or 'none'. "
                "A cluster is never whole in one stage."
            ),
            **extra,
        ),
        "health_check": Param(
            False,
            type=["null", "boolean"],
            title="Health check after patching",
            description=(
                "Count a server as patched only if it is active and powered on afterwards (and answers "
                "the health probe, if one is set); otherwise it ends unhealthy and its stage fails."
            ),
            **extra,
        ),
        "health_probe": Param(
            "",
            type=["null", "string"],
            title="Health probe",
            description=(
                "Optional: http(s):// URL or tcp://host:port built from the server's details, e.g. "
                "http://{ip}:8080/health, tcp://{ip}:22, or {custom[healthUrl]} for a URL kept in a "
                "custom field. Implies the health check."
            ),
            **extra,
        ),
        "approval": Param(
            False,
            type=["null", "boolean"],
            title="Approval after the first stage",
            description=(
                "Ask a person (the task's Required actions page) before patching the stages after the "
                "first; a rejection or a timeout stops the rollout cleanly. Needs stages."
            ),
            **extra,
        ),
        "approval_timeout_minutes": Param(
            240,
            type=["null", "integer"],
            title="Approval timeout (minutes)",
            description="How long to wait for the approval; then the rest is not patched.",
            **extra,
        ),
    }


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
                "Restore a server whose patching failed, timed out or left it unhealthy to the "
                "snapshot this run took (ends reverted). Never restores a snapshot this run did not "
                "take. Needs snapshot on."
            ),
            **extra,
        ),
    }
