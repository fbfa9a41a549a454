"""The snapshot safety net of a rollout: snapshot before patching, revert or delete after.

``Rollout`` calls three hooks, each a no-op when the ``snapshot`` parameter is ``off``:

* ``take(ready)`` — after maintenance is on and before Execute Package: createSnapshot for the
  servers that can have one, under the rollout's rate control (the window's batch, sent as
  concurrent requests of ``chunk_size`` servers like the other wave requests), then
  confirmation: the queue job succeeded *and* the server lists a snapshot it did not list before
  (``snapshot_before``; names are the API's clock, never compared with ours).
  Returns the servers that may be sent the package.
* ``settle(ids)`` — for servers that ended: restore this run's snapshot of a failed, timed
  out or unhealthy server (``revert_on_failure``) and end it ``reverted`` / ``revert_failed``; then delete
  this run's snapshot unless ``snapshot_keep`` (never after a failed revert: someone may need
  it). Idempotent: it reads the ledger and does only what is still missing.
* ``reconcile()`` — on a task's restart, ``settle`` what a dead attempt left half done.

Ownership, by construction: a snapshot is this run's only if this run asked for it (ledger
``snapshot`` written *before* the request) and the server lists it afterwards under a name it
did not have before. Every other snapshot belongs to someone else and is never replaced,
restored or deleted; a server with one is patched without a new one (``best_effort``) or not
at all (``required``: ``skipped_no_snapshot``), and the audit says why. The same holds for a
server with more than 1 TB of storage (the platform takes no snapshot of those).

Never twice: createSnapshot and restore are not replayed by the hook once they may have been
processed, and a ledger that says ``requested`` (a worker died around the request, or its
answer was lost) is resolved by watching the server's snapshot list, never by asking again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from include.clc import shapes
from include.clc.errors import ClcApiError, ClcError, ClcResponseError, PossiblySubmittedError
from include.clc.shapes import BatchItem
from include.patching.chaos import CRASH_AFTER_CREATE_SNAPSHOT, crash_point
from include.patching.chunking import chunks, each
from include.patching.rollout_state import Ledger, LedgerEntry, Phase
from include.patching.snapshot_state import RevertStatus, SnapshotFate, SnapshotMode, SnapshotStatus
from include.patching.states import ServerState
from include.patching.tuning import PRODUCTION

log = logging.getLogger(__name__)

#: The platform takes no snapshot of a server with more storage than this (reference §10).
MAX_SNAPSHOT_STORAGE_GB = 1024
DEFAULT_EXPIRATION_DAYS = 3
MIN_EXPIRATION_DAYS, MAX_EXPIRATION_DAYS = 1, 10
#: States after which ``revert_on_failure`` restores the server: the patch failed, hung, or went
#: in and left the service unhealthy (the prime case for the snapshot: the patch itself broke it).
REVERTIBLE_STATES = frozenset({ServerState.FAILED, ServerState.TIMED_OUT, ServerState.UNHEALTHY})
RUNNING = "started"
#: Outcomes of ``take`` that leave the server without a snapshot of this run.
NO_SNAPSHOT = frozenset({SnapshotStatus.NOT_TAKEN, SnapshotStatus.UNCONFIRMED})


class SnapshotApi(Protocol):
    """What the snapshot phase needs from the CLC client (``patchflow.hooks.clc.ClcHook``)."""

    def get_server(self, alias: str, server_id: str) -> dict: ...
    def create_snapshot(self, alias: str, ids: list[str], expiration_days: int) -> list[BatchItem]: ...
    def restore_snapshot(self, alias: str, server_id: str, snapshot_id: str) -> str: ...
    def delete_snapshot(self, alias: str, server_id: str, snapshot_id: str) -> str: ...
    def wait_for_job(
        self, alias: str, job_id: str, *, timeout: float = ..., interval: float = ...
    ) -> str: ...


@dataclass(frozen=True)
class SnapshotPolicy:
    """The run's snapshot parameters and the timings they need (``include.patching.tuning``)."""

    mode: SnapshotMode = SnapshotMode.OFF
    expiration_days: int = DEFAULT_EXPIRATION_DAYS
    keep: bool = True
    revert_on_failure: bool = False
    snapshot_timeout: float = PRODUCTION.snapshot_timeout
    revert_timeout: float = PRODUCTION.revert_timeout
    poll_interval: float = PRODUCTION.job_poll_interval

    @property
    def active(self) -> bool:
        return self.mode is not SnapshotMode.OFF


#: The default: no snapshot (the rollout behaves as before snapshots existed).
OFF = SnapshotPolicy()


@dataclass(frozen=True)
class Snapshot:
    """One entry of a server's ``details.snapshots``."""

    name: str
    snapshot_id: str | None


def listed_snapshots(server: dict) -> list[Snapshot]:
    """The snapshots a server's details list; the id is the last segment of its links."""
    out = []
    for raw in (server.get("details") or {}).get("snapshots") or []:
        if not isinstance(raw, dict):
            continue
        sid = None
        for link in raw.get("links") or []:
            if isinstance(link, dict) and link.get("rel") in ("self", "delete", "restore"):
                parts = str(link.get("href", "")).rstrip("/").split("/")
                if "snapshots" in parts and parts.index("snapshots") + 1 < len(parts):
                    sid = parts[parts.index("snapshots") + 1]
                    break
        out.append(Snapshot(str(raw.get("name") or ""), sid))
    return out


def storage_gb(server: dict) -> float:
    value = (server.get("details") or {}).get("storageGB")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def power_state(server: dict) -> str:
    return str((server.get("details") or {}).get("powerState") or "")


def created_at(name: str | None) -> str | None:
    """The snapshot's name (``YYYY-MM-DD.HH:MM:SS``, the API's clock) as an ISO time."""
    if not name or len(name) != 19 or name[10] != ".":
        return None
    return f"{name[:10]}T{name[11:]}Z"


class SnapshotPhase:
    """The snapshot steps of one package's rollout (see the module docstring)."""

    def __init__(
        self,
        api: SnapshotApi,
        ledger: Ledger,
        alias: str,
        policy: SnapshotPolicy,
        end: Callable[[str, ServerState, str], None],
        *,
        logger: logging.Logger | Any = log,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        chunk_size: int | None = None,
    ) -> None:
        self.api, self.ledger, self.alias, self.policy = api, ledger, alias, policy
        self._end, self.log, self.sleep, self.clock = end, logger, sleep, clock
        self.chunk_size = chunk_size
        """Servers per createSnapshot request (``include.patching.chunking``); None: one request."""

    @property
    def entries(self) -> dict[str, LedgerEntry]:
        return self.ledger.servers

    # --- before patching ----------------------------------------------------------------

    def take(self, batch: list[str]) -> list[str]:
        """Snapshot the queued servers of ``batch``; return those that may be sent the package."""
        if not self.policy.active:
            return batch
        self.ledger.data["snapshot_policy"] = {  # for the snapshot_cleanup DAG
            "mode": str(self.policy.mode),
            "keep": self.policy.keep,
            "expiration_days": self.policy.expiration_days,
            "revert_on_failure": self.policy.revert_on_failure,
        }
        queued = [s for s in batch if self.entries[s].phase is Phase.QUEUED]
        fresh = [s for s in queued if self.entries[s].snapshot is None]
        self._request([s for s in fresh if self._may_request(s)])
        self._confirm(
            [
                s
                for s in queued
                if self.entries[s].snapshot in (SnapshotStatus.REQUESTED, SnapshotStatus.QUEUED)
            ]
        )
        for sid in queued:
            e = self.entries[sid]
            if e.snapshot not in NO_SNAPSHOT:
                continue
            if self.policy.mode is SnapshotMode.REQUIRED:
                self._end(
                    sid,
                    ServerState.SKIPPED_NO_SNAPSHOT,
                    f"snapshot required: {e.snapshot_note}; package not sent",
                )
            else:
                self.log.warning("%s: patched without a snapshot (best effort): %s", sid, e.snapshot_note)
        self.ledger.save()
        return [s for s in batch if self.entries[s].phase is Phase.QUEUED]

    def _not_taken(self, sid: str, note: str) -> None:
        e = self.entries[sid]
        e.snapshot, e.snapshot_note = SnapshotStatus.NOT_TAKEN, note

    def _unconfirmed(self, sid: str, why: str) -> None:
        e = self.entries[sid]
        e.snapshot = SnapshotStatus.UNCONFIRMED
        e.snapshot_note = (
            f"{why}; a snapshot of this run may still land: left to expiry (snapshot_cleanup lists it)"
        )

    def _may_request(self, sid: str) -> bool:
        """Read the server: an owner's snapshot or more than 1 TB means no snapshot of ours."""
        try:
            server = self.api.get_server(self.alias, sid)
        except ClcError as exc:
            self._not_taken(sid, f"server details unreadable, so no snapshot was requested: {exc}")
            return False
        existing = listed_snapshots(server)
        if existing:
            names = ", ".join(s.name for s in existing)
            self._not_taken(
                sid,
                f"the server already has a snapshot ({names}) that this run did not take; it belongs "
                "to its owner and is never replaced or deleted (one snapshot per server)",
            )
            return False
        if storage_gb(server) > MAX_SNAPSHOT_STORAGE_GB:
            self._not_taken(
                sid, f"{storage_gb(server):g} GB of storage: the platform takes no snapshot over 1 TB"
            )
            return False
        self.entries[sid].snapshot_before = []
        return True

    def _request(self, ids: list[str]) -> None:
        """createSnapshot for ``ids`` in concurrent chunks; ``requested`` is durable before any is sent.

        The platform takes a request's snapshots one after another (~2 min each, reference
        §10.1), so several small requests side by side finish a wave's snapshots much sooner.
        """
        if not ids:
            return
        for sid in ids:
            self.entries[sid].snapshot = SnapshotStatus.REQUESTED
        self.ledger.save()
        pieces = chunks(ids, self.chunk_size)
        answers = each(
            lambda piece: self.api.create_snapshot(self.alias, piece, self.policy.expiration_days), pieces
        )
        crash_point(CRASH_AFTER_CREATE_SNAPSHOT)  # resilience tests only: die before recording
        for piece, answer in zip(pieces, answers, strict=True):
            self._record_request(piece, answer)
        self.ledger.save()

    def _record_request(self, ids: list[str], answer: list[BatchItem] | ClcError) -> None:
        """One createSnapshot request's answer (or error) for its own servers."""
        if isinstance(answer, (PossiblySubmittedError, ClcResponseError)):
            self.log.warning(
                "createSnapshot for %s may have been processed (%s): watching the servers", ids, answer
            )
            return  # stay ``requested``: confirmed from the servers' snapshot lists
        if isinstance(answer, ClcError):
            for sid in ids:
                self._not_taken(sid, f"createSnapshot not accepted: {answer}")
            return
        answered = {i.server: i for i in answer}
        for sid in ids:
            item, e = answered.get(sid), self.entries[sid]
            if item is None:
                continue  # missing from the answer: it may still have been queued
            if item.queued:
                e.snapshot, e.snapshot_job_id = SnapshotStatus.QUEUED, item.job_id
            else:
                self._not_taken(sid, f"createSnapshot refused: {item.error or 'not queued'}")

    def _confirm(self, ids: list[str]) -> None:
        """Wait for the jobs, then find each server's new snapshot in its details."""
        if not ids:
            return
        jobs: dict[str, list[str]] = {}
        for sid in ids:
            job = self.entries[sid].snapshot_job_id
            if job:
                jobs.setdefault(job, []).append(sid)
        for job_id, members in jobs.items():
            timeout = self.policy.snapshot_timeout * len(members)
            status = self._wait(job_id, timeout)
            if status in shapes.QUEUE_FAILED:
                for sid in members:
                    self._not_taken(sid, f"snapshot job {job_id} ended {status}")
            elif status != shapes.QUEUE_SUCCEEDED:
                for sid in members:
                    self._unconfirmed(sid, f"snapshot job {job_id} not done after {timeout:.0f}s ({status})")
        self.ledger.save()
        pending = [
            s for s in ids if self.entries[s].snapshot in (SnapshotStatus.REQUESTED, SnapshotStatus.QUEUED)
        ]
        deadline = self.clock() + self.policy.snapshot_timeout * max(len(pending), 1)
        while pending:
            for sid in list(pending):
                if self._found(sid):
                    pending.remove(sid)
                elif self.entries[sid].snapshot is SnapshotStatus.QUEUED:  # job succeeded, nothing listed
                    job = self.entries[sid].snapshot_job_id
                    self._unconfirmed(
                        sid, f"snapshot job {job} succeeded but the server lists no new snapshot"
                    )
                    pending.remove(sid)
            if not pending or self.clock() + self.policy.poll_interval > deadline:
                break
            self.sleep(self.policy.poll_interval)
        for sid in pending:
            self._unconfirmed(sid, "createSnapshot's answer was lost and no new snapshot appeared in time")
        self.ledger.save()

    def _found(self, sid: str) -> bool:
        """The server lists a snapshot it did not have before the request: this run's."""
        e = self.entries[sid]
        try:
            server = self.api.get_server(self.alias, sid)
        except ClcError as exc:
            self.log.warning("%s: details unreadable while confirming its snapshot (%s)", sid, exc)
            return False
        before = set(e.snapshot_before or [])
        new = [s for s in listed_snapshots(server) if s.name not in before]
        if not new:
            return False
        e.snapshot, e.snapshot_name, e.snapshot_id = (
            SnapshotStatus.CONFIRMED,
            new[-1].name,
            new[-1].snapshot_id,
        )
        self.log.info("%s: snapshot %s taken (id %s)", sid, e.snapshot_name, e.snapshot_id)
        return True

    def _wait(self, job_id: str, timeout: float) -> str:
        try:
            return str(
                self.api.wait_for_job(self.alias, job_id, timeout=timeout, interval=self.policy.poll_interval)
            )
        except ClcError as exc:
            self.log.warning("queue job %s unreadable (%s)", job_id, exc)
            return "unknown"

    # --- after a server ended -------------------------------------------------------------

    def reconcile(self) -> None:
        """Finish what a dead attempt left half done for servers that had already ended."""
        if self.policy.active:
            self.settle([sid for sid, e in self.ledger.ordered() if e.phase is Phase.DONE])

    def settle(self, ids: list[str]) -> None:
        """Revert failed servers (``revert_on_failure``), then delete or keep this run's snapshots."""
        if not self.policy.active:
            return
        ours = [
            s
            for s in ids
            if self.entries[s].phase is Phase.DONE and self.entries[s].snapshot is SnapshotStatus.CONFIRMED
        ]
        self._reverts(ours)
        deletes: dict[str, str] = {}
        for sid in ours:
            e = self.entries[sid]
            if e.snapshot_fate in (None, SnapshotFate.DELETE_REQUESTED):
                job = self._dispose(sid)
                if job:
                    deletes[sid] = job
        self.ledger.save()
        for sid, job in deletes.items():
            status = self._wait(job, self.policy.snapshot_timeout)
            e = self.entries[sid]
            if status == shapes.QUEUE_SUCCEEDED:
                e.snapshot_fate = SnapshotFate.DELETED
            else:
                e.snapshot_fate = SnapshotFate.DELETE_FAILED
                e.snapshot_note = f"delete job {job} ended {status}; left to snapshot_cleanup and expiry"
        self.ledger.save()

    def _dispose(self, sid: str) -> str | None:
        """Keep or start deleting this run's snapshot; the delete's job id when one was queued."""
        e = self.entries[sid]
        if e.state is ServerState.REVERT_FAILED or e.revert in (RevertStatus.REQUESTED, RevertStatus.QUEUED):
            e.snapshot_fate = SnapshotFate.KEPT  # the server's state is unknown: someone may need it
            return None
        if self.policy.keep:
            e.snapshot_fate = SnapshotFate.KEPT
            return None
        e.snapshot_fate = SnapshotFate.DELETE_REQUESTED
        self.ledger.save()
        try:
            return self.api.delete_snapshot(self.alias, sid, str(e.snapshot_id))
        except ClcApiError as exc:
            if exc.status == 404:
                e.snapshot_fate = SnapshotFate.DELETED  # already gone (an earlier attempt's delete)
                return None
            e.snapshot_fate, e.snapshot_note = SnapshotFate.DELETE_FAILED, f"delete refused: {exc}"
        except ClcError as exc:
            e.snapshot_fate, e.snapshot_note = SnapshotFate.DELETE_FAILED, f"delete not sent: {exc}"
        return None

    def _reverts(self, ids: list[str]) -> None:
        """Restore every server of ``ids`` that needs it: all requests first, then one shared wait
        (the platform restores them side by side), so N failures cost one ``revert_timeout``."""
        waiting = []
        for sid in ids:
            e = self.entries[sid]
            if e.revert is RevertStatus.QUEUED:
                waiting.append(sid)  # a dead attempt's restore: wait for it, never send another
            elif e.revert is RevertStatus.REQUESTED:
                self._revert_failed(
                    sid,
                    "the restore may have been sent but its answer was never recorded (the task died); "
                    "not sent again: check the server",
                )
            elif e.revert is None and self._needs_revert(e):
                waiting += self._revert(sid)
        if not waiting:
            return
        deadline = self.clock() + self.policy.revert_timeout
        for sid in waiting:
            self._finish_revert(sid, deadline)

    def _needs_revert(self, e: LedgerEntry) -> bool:
        """Failed, timed out or unhealthy after the package may have reached the server (not refused)."""
        sent = bool(e.submissions) and e.submissions[-1].get("result") != "refused"
        return self.policy.revert_on_failure and e.state in REVERTIBLE_STATES and sent

    def _revert(self, sid: str) -> list[str]:
        """Send one restore (``requested`` durable first); ``[sid]`` when its job is to be waited for."""
        e = self.entries[sid]
        e.revert, e.failed_state = RevertStatus.REQUESTED, e.state
        self.ledger.save()
        self.log.warning("%s: %s; restoring snapshot %s taken by this run", sid, e.state, e.snapshot_name)
        try:
            job = self.api.restore_snapshot(self.alias, sid, str(e.snapshot_id))
        except PossiblySubmittedError as exc:
            self._revert_failed(
                sid, f"the restore's answer was lost ({exc.reason}); not sent again: check the server"
            )
            return []
        except ClcError as exc:
            self._revert_failed(sid, f"restore not accepted: {exc}")
            return []
        e.revert, e.revert_job_id = RevertStatus.QUEUED, job
        self.ledger.save()
        return [sid]

    def _finish_revert(self, sid: str, deadline: float) -> None:
        """Wait for the restore job, then for the server to run again, until ``deadline``."""
        e = self.entries[sid]
        timeout = self.policy.revert_timeout
        status = self._wait(str(e.revert_job_id), max(deadline - self.clock(), 0.0))
        if status != shapes.QUEUE_SUCCEEDED:
            done = "ended " + status if status in shapes.QUEUE_FAILED else f"not done after {timeout:.0f}s"
            self._revert_failed(sid, f"restore job {e.revert_job_id} {done}")
            return
        while True:
            power = self._power(sid)
            if power == RUNNING:
                break
            if self.clock() + self.policy.poll_interval > deadline:
                power = power or "unreadable"
                self._revert_failed(
                    sid, f"restored, but the server was not running after {timeout:.0f}s ({power})"
                )
                return
            self.sleep(self.policy.poll_interval)
        e.revert = RevertStatus.RESTORED
        why = f"{e.reason or e.failed_state}; reverted to snapshot {e.snapshot_name} taken by this run"
        self._end(sid, ServerState.REVERTED, why + " before patching")
        self.ledger.save()

    def _power(self, sid: str) -> str:
        try:
            return power_state(self.api.get_server(self.alias, sid))
        except ClcError:
            return ""

    def _revert_failed(self, sid: str, why: str) -> None:
        e = self.entries[sid]
        e.revert = RevertStatus.FAILED
        e.failed_state = e.failed_state or e.state
        self.log.error("%s: revert to snapshot %s failed: %s", sid, e.snapshot_name, why)
        self._end(sid, ServerState.REVERT_FAILED, f"{e.reason or e.failed_state}; revert failed: {why}")
        self.ledger.save()


def evidence(entry: LedgerEntry | None) -> dict[str, Any]:
    """The audit's snapshot columns for one server (None: no rollout touched it)."""
    if entry is None or entry.snapshot is None:
        return dict(EMPTY_EVIDENCE)
    ours = entry.snapshot is SnapshotStatus.CONFIRMED
    return {
        "snapshot": str(entry.snapshot),
        "snapshot_name": entry.snapshot_name if ours else None,
        "snapshot_created_at": created_at(entry.snapshot_name) if ours else None,
        "snapshot_fate": str(entry.snapshot_fate) if entry.snapshot_fate else None,
        "snapshot_restored": entry.revert is RevertStatus.RESTORED,
        "snapshot_note": entry.snapshot_note or "",
    }


EMPTY_EVIDENCE: dict[str, Any] = {
    "snapshot": None,
    "snapshot_name": None,
    "snapshot_created_at": None,
    "snapshot_fate": None,
    "snapshot_restored": False,
    "snapshot_note": "",
}
