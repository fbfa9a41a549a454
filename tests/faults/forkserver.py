"""A pre-loaded launcher for the matrix's ``dag.test()`` runs: import Airflow once, fork per run.

Each scenario's run must be a process of its own (killed at its time bound, its output in one
log file), but importing Airflow, the providers, patchflow and Great Expectations costs about
six seconds per process. This server imports them once and forks a child per run; the child
takes the run's environment, sends its output to the run's log and calls
``tests.faults.runner.main``. Nothing here talks to the metadata DB or the simulator, so the
fork happens with no connection or thread to inherit.

Protocol (one JSON object per line): the server says ``{"ready": true}`` once loaded; the
harness writes ``{"argv": [...], "env": {...}, "log": "path"}`` on stdin and reads
``{"pid": N}`` on stdout (anything else the server prints goes to stderr). The child is its own
process group (``killpg`` at the bound) and is reaped by the server.

    python -m tests.faults.forkserver
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

PRELOAD = (
    "airflow.models.dagrun",
    "airflow.dag_processing.dagbag",
    "airflow.providers.http.hooks.http",
    "airflow.sdk.execution_time.task_runner",
    "patchflow.hooks.clc",
    "patchflow.tasks",
    "patchflow.triggers.patching",
    "patchflow.operators.rollout",
    "patchflow.operators.maintenance",
    "great_expectations",
    "include.reporting.evidence_pack",
    "include.reporting.validation",
    "include.reporting.compliance",
    "tests.faults.runner",
)


def preload() -> None:
    for module in PRELOAD:
        __import__(module)


def start_child(request: dict[str, Any]) -> int:
    """Fork one run; the parent returns the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    try:  # the child never returns from here
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        from tests.faults.runner import main

        code = main(request["argv"])
    except BaseException as exc:  # report anything to the run's log, never to the server
        import traceback

        traceback.print_exc()
        code = 1 if not isinstance(exc, SystemExit) else int(exc.code or 0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    # Answers go out on the original stdout; everything else printed (Airflow's logging) to stderr.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    preload()
    if threading.active_count() != 1:
        answers.write(json.dumps({"error": f"{threading.active_count()} threads after preload"}) + "\n")
        return
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if line.strip():
            pid = start_child(json.loads(line))
            answers.write(json.dumps({"pid": pid}) + "\n")


if __name__ == "__main__":
    serve()
