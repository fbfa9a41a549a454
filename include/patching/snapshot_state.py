"""What the rollout ledger records about a server's snapshot (the ``snapshot`` run parameter).

Kept apart from ``include.patching.snapshots`` (which does the work) so the ledger can type
its fields without importing the rollout. Every value is written to the ledger *before* the
side effect it announces, so a retried or crashed task knows a request may be out there and
never sends a second one (the same rule as I1 for Execute Package).
"""

from __future__ import annotations

from enum import StrEnum


class SnapshotMode(StrEnum):
    """The ``snapshot`` run parameter."""

    OFF = "off"
    """No snapshot: the rollout behaves as before snapshots existed."""
    BEST_EFFORT = "best_effort"
    """Take one when possible; a server that cannot have one is patched without, the audit says why."""
    REQUIRED = "required"
    """No snapshot of this run, no patch: the server ends ``skipped_no_snapshot``."""


class SnapshotStatus(StrEnum):
    """Ledger ``snapshot``: how far this run got with taking the server's snapshot."""

    REQUESTED = "requested"
    """Written before createSnapshot is sent: a snapshot may exist from here on, never ask again."""
    QUEUED = "queued"
    """The platform queued it; ``snapshot_job_id`` is known."""
    CONFIRMED = "confirmed"
    """Its job succeeded and the server lists it (``snapshot_name``, ``snapshot_id``): ours."""
    NOT_TAKEN = "not_taken"
    """No snapshot of this run: ``snapshot_note`` says why (an owner's, over 1 TB, refused, failed)."""
    UNCONFIRMED = "unconfirmed"
    """Requested, but neither its snapshot nor a refusal was seen in time (the job outlived
    ``snapshot_timeout``, or the answer was lost and nothing appeared): one of this run's may
    still land. Treated as no snapshot; never requested again; left to expiry."""


class SnapshotFate(StrEnum):
    """Ledger ``snapshot_fate``: what became of this run's snapshot once the server ended."""

    KEPT = "kept"
    """Left in place (``snapshot_keep``, or the server may need it); it expires on its own."""
    DELETE_REQUESTED = "delete_requested"
    """Written before the DELETE is sent; the cleanup DAG finishes it if the run dies."""
    DELETED = "deleted"
    """The delete job succeeded."""
    DELETE_FAILED = "delete_failed"
    """The delete was refused or its job failed: left to the cleanup DAG and to expiry."""


class RevertStatus(StrEnum):
    """Ledger ``revert``: the restore of this run's snapshot after a failed patch."""

    REQUESTED = "requested"
    """Written before the restore is sent: never sent twice."""
    QUEUED = "queued"
    """The platform queued it; ``revert_job_id`` is known."""
    RESTORED = "restored"
    """Its job succeeded and the server runs again: the server ends ``reverted``."""
    FAILED = "failed"
    """Refused, failed, or not done in ``revert_timeout``: the server ends ``revert_failed``."""
