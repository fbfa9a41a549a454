"""Fault points for resilience tests: make the process die at the worst moment, once.

Nothing happens unless the environment asks for it, so production never pays for this.
``PATCHFLOW_CHAOS_CRASH_AFTER_SUBMIT=<marker file>`` kills the worker with ``os._exit`` right
after an Execute Package request was answered and before the answer was recorded — the moment
at which a naive retry would patch the servers twice (I1). The marker file makes it fire once:
the retry then runs normally and must reconcile instead of re-submitting.
``…_AFTER_START_MAINTENANCE`` and ``…_AFTER_STOP_MAINTENANCE`` do the same right after a
startMaintenance / stopMaintenance request was answered (I2: the retry must still know which
servers this run put into maintenance, and release them). ``…_AFTER_CREATE_SNAPSHOT`` dies right
after a createSnapshot request was answered: the retry must take no second snapshot and lose
track of none.
"""

from __future__ import annotations

import os
from pathlib import Path

CRASH_AFTER_SUBMIT = "PATCHFLOW_CHAOS_CRASH_AFTER_SUBMIT"
CRASH_AFTER_START_MAINTENANCE = "PATCHFLOW_CHAOS_CRASH_AFTER_START_MAINTENANCE"
CRASH_AFTER_STOP_MAINTENANCE = "PATCHFLOW_CHAOS_CRASH_AFTER_STOP_MAINTENANCE"
CRASH_AFTER_CREATE_SNAPSHOT = "PATCHFLOW_CHAOS_CRASH_AFTER_CREATE_SNAPSHOT"


def crash_point(name: str) -> None:
    """Exit the process abruptly if ``name`` is armed and has not fired yet."""
    marker = os.environ.get(name)
    if not marker:
        return
    path = Path(marker)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x") as fh:  # fire once, even across processes
            fh.write(f"{name} fired in pid {os.getpid()}\n")
    except FileExistsError:
        return
    os._exit(137)
