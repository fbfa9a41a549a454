"""Stopping a component stops everything it started — also what ignores SIGTERM or left its group.

Airflow's task supervisor moves each task into a process group of its own, and a component's
leader can exit while its children live on (the triggerer that outlived "Stopped."): a stop must
wait for every one of them, not just the process it started.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from launcher import proctree
from launcher.processes import ComponentExited, Components, stop_groups

pytestmark = pytest.mark.slow

LEADER = textwrap.dedent(
    """
    import subprocess, sys, time
    def child(code):
        code += "; print('ready', flush=True); time.sleep(600)"
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    stubborn = child("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    escaped = child("import os, time; os.setpgid(0, 0)")  # as Airflow's task supervisor does
    stubborn.stdout.readline(), escaped.stdout.readline()
    print(stubborn.pid, escaped.pid, flush=True)
    time.sleep(600)
    """
)


def test_a_stop_returns_only_when_the_group_and_every_descendant_are_gone():
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert leader.stdout is not None
    pids = [int(p) for p in leader.stdout.readline().split()]
    procs = [proctree.read(pid) for pid in (leader.pid, *pids)]
    assert all(procs), "the test's processes did not start"
    stubborn, escaped = procs[1], procs[2]
    assert stubborn.pgid == leader.pid and escaped.pgid == escaped.pid

    started = time.monotonic()
    left = stop_groups([leader], grace=1.0)

    assert left == []
    assert not [p for p in procs if p is not None and proctree.alive(p)]
    assert leader.returncode is not None
    assert time.monotonic() - started < 10


def test_an_exited_component_is_reported_with_its_own_last_log_lines(tmp_path):
    components = Components(tmp_path)
    script = "import sys; print('starting'); print('[Errno 98] address already in use'); sys.exit(3)"
    components.start("api-server", [sys.executable, "-c", script], env={})
    components.procs["api-server"].wait(timeout=30)

    with pytest.raises(ComponentExited) as exc:
        components.check()

    assert exc.value.name == "api-server"
    assert exc.value.returncode == 3
    assert "[Errno 98] address already in use" in str(exc.value)
    assert components.stop() == []
