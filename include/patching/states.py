"""The closed set of terminal states a server can end a run in (invariant I3).

Every inventoried server gets exactly one of these in the audit. The set is closed on
purpose: reports, Great Expectations suites and the compliance history all validate
against it, so a new state is a deliberate, reviewed change here.
"""

from __future__ import annotations

from enum import StrEnum


class ServerState(StrEnum):
    """Terminal state of one server in one run.

    Declared grouped by kind (done, went wrong, never sent, skipped): reports, charts and the
    attention list show states in this order.
    """

    PATCHED = "patched"
    """The execution completed, installed at least one patch and none failed."""
    PATCHED_NO_UPDATES = "patched_no_updates"
    """The execution completed and there was nothing to install: the server is clean."""
    FAILED = "failed"
    """The execution (or the request for it) failed, or at least one patch failed."""
    TIMED_OUT = "timed_out"
    """No completed execution within the per-server timeout (invariant I7)."""
    UNHEALTHY = "unhealthy"
    """The execution completed, but the server failed its post-patch health check (not active,
    not powered on, or the run's health probe did not answer healthy in time). Counts against
    the error budget and fails its stage (staged rollouts halt there)."""
    REVERTED = "reverted"
    """Patching failed or timed out and the server was restored to the snapshot this run took
    before sending the package (``revert_on_failure``): back where it was, still unpatched.
    Counts against the error budget (the patch failed) and needs a person (not compliant)."""
    REVERT_FAILED = "revert_failed"
    """Patching failed or timed out and restoring this run's snapshot failed or did not finish
    in time: the server's state is unknown. Counts against the error budget; needs a person first."""
    NOT_ATTEMPTED = "not_attempted"
    """Eligible, but never sent: the error budget was exhausted, the run stopped first, its
    maintenance window was closing ("window closed"), or its maintenance mode could not be turned
    on. Not an error against the budget."""
    SKIPPED_NO_SNAPSHOT = "skipped_no_snapshot"
    """``snapshot: required`` and no snapshot of this run could be taken (an owner's snapshot
    already exists, more than 1 TB of storage, or the snapshot failed): the package was never
    sent. Not an error against the budget (nothing was tried), but a problem: unlike the other
    skips it was put into maintenance and it stays unpatched until a person decides."""
    SKIPPED_UNSUPPORTED_OS = "skipped_unsupported_os"
    """The OS has no patch package in Patching-as-a-Service."""
    SKIPPED_NOT_RUNNING = "skipped_not_running"
    """Power state is not `started` (stopped or paused servers cannot run the package)."""
    SKIPPED_NOT_ACTIVE = "skipped_not_active"
    """Status is not `active` (under construction, archived, queued for delete...)."""
    SKIPPED_TEMPLATE = "skipped_template"
    """A template is not a running machine."""
    SKIPPED_FILTERED = "skipped_filtered"
    """Left out by this run's parameters (data centers, groups, allow/deny lists)."""
    PLANNED_DRY_RUN = "planned_dry_run"
    """Dry run: would have been patched with the package named in the row."""


#: States in which the package was sent to the server.
ATTEMPTED_STATES = frozenset(
    {
        ServerState.PATCHED,
        ServerState.PATCHED_NO_UPDATES,
        ServerState.FAILED,
        ServerState.TIMED_OUT,
        ServerState.UNHEALTHY,
        ServerState.REVERTED,
        ServerState.REVERT_FAILED,
    }
)
#: States that need a person's attention and are listed first in reports (only the
#: ``ERROR_STATES``, which were sent the package, count against the error budget).
PROBLEM_STATES = frozenset(
    {
        ServerState.FAILED,
        ServerState.TIMED_OUT,
        ServerState.UNHEALTHY,
        ServerState.NOT_ATTEMPTED,
        ServerState.REVERTED,
        ServerState.REVERT_FAILED,
        ServerState.SKIPPED_NO_SNAPSHOT,
    }
)
#: States that count against the error budget (``max_errors``): the package was sent and the
#: server did not end patched and healthy — reverted or not.
ERROR_STATES = frozenset(
    {
        ServerState.FAILED,
        ServerState.TIMED_OUT,
        ServerState.UNHEALTHY,
        ServerState.REVERTED,
        ServerState.REVERT_FAILED,
    }
)
#: States that mean "skipped with a reason": nothing was touched.
SKIPPED_STATES = frozenset(
    {
        ServerState.SKIPPED_UNSUPPORTED_OS,
        ServerState.SKIPPED_NOT_RUNNING,
        ServerState.SKIPPED_NOT_ACTIVE,
        ServerState.SKIPPED_TEMPLATE,
        ServerState.SKIPPED_FILTERED,
    }
)
ALL_STATES = frozenset(ServerState)
