"""Delete the snapshots patchflow took and no longer needs, found from the run ledgers.

Run by the ``snapshot_cleanup`` DAG. A rollout deletes its own snapshots as servers end
(unless ``snapshot_keep``); this sweeps up what a run that died could not: a delete that was
requested but never confirmed, or a snapshot a dead run confirmed but never settled while its
policy said not to keep it. The platform's expiry (``snapshot_expiration_days``, at most 10
days) is the backstop for anything this misses.

What is never deleted, by construction:

* a snapshot the ledger does not name as this run's (``snapshot: confirmed`` with its id and
  name) — an owner's snapshot is never in a ledger as ours;
* a snapshot whose id or name on the server no longer matches the ledger's (someone replaced it);
* the snapshot of a server that did not end patched (failed, reverted, revert_failed, or not
  ended at all): a person may need it; it expires on its own;
* anything of a ledger touched within ``grace`` seconds (its run may still be going on).

A request never confirmed (``requested``/``queued``/``unconfirmed``) is only reported:
the snapshot that may have landed cannot be told from one its owner took later without
comparing clocks (I8), so it is left to expiry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from include.clc import shapes
from include.clc.errors import ClcApiError, ClcError
from include.patching.rollout_state import Ledger, LedgerEntry, Phase
from include.patching.snapshot_state import SnapshotFate, SnapshotStatus
from include.patching.snapshots import SnapshotApi, listed_snapshots
from include.patching.states import ServerState
from include.timefmt import parse_iso8601

log = logging.getLogger(__name__)

LEDGER_GLOB = "rollout_*.ledger.json"
#: Requests whose snapshot was never confirmed: only reported (see the module docstring).
UNSETTLED = frozenset({SnapshotStatus.REQUESTED, SnapshotStatus.QUEUED, SnapshotStatus.UNCONFIRMED})
#: A server in one of these states was patched: its snapshot is needed no more once the run is over.
DONE_WITH = frozenset(
    {
        ServerState.PATCHED,
        ServerState.PATCHED_NO_UPDATES,
        ServerState.NOT_ATTEMPTED,
        ServerState.SKIPPED_NO_SNAPSHOT,
    }
)


@dataclass
class CleanupReport:
    """What one sweep did, for the task log and its XCom."""

    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)
    ledgers: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ledgers": self.ledgers,
            "deleted": self.deleted,
            "kept": self.kept,
            "failed": self.failed,
            "unconfirmed": self.unconfirmed,
        }


def ledger_files(base: Any) -> list[Any]:
    """Every rollout ledger under ``base`` (``<dag_id>/<run_id>/rollout_<package>.ledger.json``).

    ``base`` is a ``Path`` or an ``ObjectStoragePath`` (both glob; ``PathLike`` does not say so)."""
    return sorted(base.glob(f"*/*/{LEDGER_GLOB}"))


def _keep_policy(ledger: Ledger) -> bool:
    """The run's ``snapshot_keep`` (True when the ledger does not say: never delete on a guess)."""
    policy = ledger.data.get("snapshot_policy") or {}
    return bool(policy.get("keep", True))


def to_delete(ledger: Ledger, entry: LedgerEntry) -> bool:
    """This run's confirmed snapshot, the server ended patched, and the run did not mean to keep it."""
    if entry.snapshot is not SnapshotStatus.CONFIRMED or not entry.snapshot_id or not entry.snapshot_name:
        return False
    if entry.snapshot_fate in (SnapshotFate.DELETED, SnapshotFate.KEPT):
        return False
    if entry.phase is not Phase.DONE or entry.state not in DONE_WITH:
        return False
    return entry.snapshot_fate in (
        SnapshotFate.DELETE_REQUESTED,
        SnapshotFate.DELETE_FAILED,
    ) or not _keep_policy(ledger)


def sweep(
    api: SnapshotApi,
    paths: Iterable[Any],
    *,
    now: datetime,
    grace: float,
    job_timeout: float,
    poll_interval: float,
    logger: logging.Logger | Any = log,
) -> CleanupReport:
    """Delete the leftovers of every ledger untouched for ``grace`` seconds; record it in the ledger."""
    report = CleanupReport()
    for path in paths:
        ledger = Ledger.load(path)
        updated = parse_iso8601(ledger.data.get("updated_at"))
        if updated is not None and now - updated < timedelta(seconds=grace):
            continue
        report.ledgers += 1
        for sid, entry in ledger.ordered():
            label = f"{sid} ({path.parent.name})"
            if entry.snapshot in UNSETTLED:
                report.unconfirmed.append(label)
                logger.warning(
                    "%s: a snapshot request was never confirmed; left to expiry, check by hand", label
                )
            elif to_delete(ledger, entry):
                _delete(api, ledger, sid, entry, report, label, job_timeout, poll_interval, logger)
            elif entry.snapshot is SnapshotStatus.CONFIRMED and entry.snapshot_fate is None:
                report.kept.append(label)  # kept on purpose, or the server may need it: expiry
        ledger.save()
    return report


def _delete(
    api: SnapshotApi,
    ledger: Ledger,
    sid: str,
    entry: LedgerEntry,
    report: CleanupReport,
    label: str,
    job_timeout: float,
    poll_interval: float,
    logger: Any,
) -> None:
    alias = ledger.alias
    try:
        listed = listed_snapshots(api.get_server(alias, sid))
    except ClcApiError as exc:
        if exc.status == 404:  # the server is gone, and its snapshots with it
            entry.snapshot_fate = SnapshotFate.DELETED
            report.deleted.append(label)
            return
        report.failed.append(label)
        logger.warning("%s: server unreadable (%s); next sweep", label, exc)
        return
    except ClcError as exc:
        report.failed.append(label)
        logger.warning("%s: server unreadable (%s); next sweep", label, exc)
        return
    mine = [s for s in listed if s.snapshot_id == entry.snapshot_id and s.name == entry.snapshot_name]
    if not mine:
        entry.snapshot_fate = SnapshotFate.DELETED  # gone already (expired, or deleted by a person)
        report.deleted.append(label)
        logger.info("%s: snapshot %s is gone already", label, entry.snapshot_name)
        return
    try:
        job = api.delete_snapshot(alias, sid, str(entry.snapshot_id))
        status = api.wait_for_job(alias, job, timeout=job_timeout, interval=poll_interval)
    except ClcError as exc:
        report.failed.append(label)
        logger.warning("%s: delete of snapshot %s failed (%s); next sweep", label, entry.snapshot_name, exc)
        return
    if status == shapes.QUEUE_SUCCEEDED:
        entry.snapshot_fate = SnapshotFate.DELETED
        report.deleted.append(label)
        logger.info("%s: deleted snapshot %s the run left behind", label, entry.snapshot_name)
    else:
        entry.snapshot_fate = SnapshotFate.DELETE_FAILED
        report.failed.append(label)
        logger.warning("%s: delete job %s ended %s; next sweep", label, job, status)
