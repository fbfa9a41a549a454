"""A server's patch state: which of its fleet patches are installed at a given instant.

It is derived rather than stored patch by patch: the baseline the last restore left behind
(empty for the fleet's initial state) plus what the server's executions installed since.
A snapshot records the state at the instant it is taken and a restore puts it back, so the
patches the restored state lacks are applicable again (the next patch run installs them),
while every execution stays in the patching history.
"""

from __future__ import annotations

from collections.abc import Mapping

from simulator.entities import Server
from simulator.executions import Execution


def installed_patches(server: Server, executions: Mapping[str, Execution], at: float) -> set[str]:
    """Keys (KB or NEVRA) of the patches installed on ``server`` at simulated time ``at``."""
    keys = set(server.patch_baseline)
    for ex_id in server.executions:
        keys |= executions[ex_id].installed_between(server.baseline_at, at)
    return keys


def roll_back(server: Server, installed: list[str], at: float) -> None:
    """Make ``installed`` the server's whole patch state from ``at`` on (a snapshot restore)."""
    server.patch_baseline = sorted(installed)
    server.baseline_at = at


def cut_off_active_execution(server: Server, executions: Mapping[str, Execution], at: float) -> None:
    """A restore stops the VM: a patch run still going on there ends at ``at`` without ever
    completing (it stays ``pending`` in the history) and no longer holds the server."""
    ex = executions.get(server.active_execution or "")
    if ex is not None and not ex.is_completed(at):
        ex.halt_at = at if ex.halt_at is None else min(ex.halt_at, at)
    server.active_execution = None
