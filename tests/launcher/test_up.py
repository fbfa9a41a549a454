"""`make up` as a newcomer meets it: a busy port, Ctrl-C while it starts, a component that dies,
a normal stop. Each test runs the real launcher on free ports with a temporary state folder,
records every process it starts (its whole process tree, sampled while it runs), and checks
that each of them is gone once the launcher has exited.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher import proctree
from launcher.ports import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class UpRun:
    """``python -m launcher.up`` in a session of its own, as a terminal would run it."""

    def __init__(self, state: Path, port: int, sim_port: int) -> None:
        self.state, self.port, self.sim_port = state, port, sim_port
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # not the test's Airflow
        cmd = [sys.executable, "-m", "launcher.up", "--port", str(port), "--sim-port", str(sim_port)]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*cmd, "--state-dir", str(state)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        #: (time.time() when read, line) of the launcher's stderr
        self.stderr: list[tuple[float, str]] = []
        self.seen: set[proctree.ProcInfo] = set()
        #: when each process was last seen alive, and its command line when first seen
        self.last_seen: dict[proctree.ProcInfo, float] = {}
        self.cmdlines: dict[proctree.ProcInfo, bytes] = {}
        self.readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in [*self.readers, threading.Thread(target=self._record, daemon=True)]:
            thread.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line.rstrip("\n"))
            self.lines.put(line)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append((time.time(), line))

    def _record(self) -> None:
        """Every process the launcher started, including ones that come and go while it runs."""
        while self.proc.poll() is None:
            self._note_family()
            time.sleep(0.2)

    def _note_family(self) -> None:
        now = {p for p in proctree.family(self.proc.pid) if p.pid != self.proc.pid}
        at = time.time()
        for p in now:
            self.last_seen[p] = at
            self.cmdlines.setdefault(p, _cmdline(p.pid))
        self.seen = self.seen | now

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, f"launcher exited early:\n{self.output()}"
                continue
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting {prefix!r} within {timeout} s:\n{self.output()}")

    def interrupt(self, signum: int = signal.SIGINT) -> None:
        """What Ctrl-C does: the signal goes to the terminal's foreground process group."""
        self._note_family()
        os.killpg(self.proc.pid, signum)

    def finish(self, timeout: float) -> tuple[int, float]:
        """Exit code and seconds since the start, once the launcher has exited and said all."""
        code = self.proc.wait(timeout=timeout)
        seconds = time.monotonic() - self.started
        for reader in self.readers:
            reader.join(timeout=10)
        return code, seconds

    def errors(self) -> str:
        return "".join(line for _, line in self.stderr)

    def output(self) -> str:
        return "\n".join(self.stdout)

    def survivors(self) -> list[proctree.ProcInfo]:
        groups = {p.pgid for p in self.seen}
        left = {p for p in self.seen if proctree.alive(p)}
        left |= {p for p in proctree.snapshot() if p.pgid in groups}
        return sorted(left, key=lambda p: p.pid)

    def kill_leftovers(self) -> None:
        """Only for a failed test: SIGKILL what this run started, nothing else."""
        for p in [*self.survivors(), *([proctree.read(self.proc.pid)] if self.proc.poll() is None else [])]:
            if p is not None and proctree.alive(p):
                os.kill(p.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def up(tmp_path) -> Iterator[UpRun]:
    run = UpRun(tmp_path / "state", free_port(), free_port())
    yield run
    run.kill_leftovers()


def _listener(port: int) -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


@pytest.mark.parametrize("which", ["port", "sim_port"])
def test_a_busy_port_is_named_in_one_line_within_seconds_and_nothing_starts(tmp_path, which):
    ports = {"port": free_port(), "sim_port": free_port()}
    with _listener(ports[which]):
        run = UpRun(tmp_path / "state", **ports)
        code, seconds = run.finish(timeout=30)
        err = run.errors()
    assert code == 2
    assert seconds < 10
    assert err.count("\n") == 1 and "already in use" in err and str(ports[which]) in err
    assert run.output() == ""
    assert not (tmp_path / "state").exists(), "something was started before the port check"
    assert run.survivors() == []


def test_make_up_passes_the_port_and_reports_it_busy():
    if not (ROOT / ".venv" / ".installed-stamp").exists():
        pytest.skip("needs `make install` (the Makefile's venv)")
    port, sim_port = free_port(), free_port()
    with _listener(port):
        done = subprocess.run(
            ["make", "-s", "up", f"PORT={port}", f"SIM_PORT={sim_port}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert f"{port} (Airflow UI; choose another with PORT=" in done.stderr


@pytest.mark.parametrize(
    ("signum", "after", "running"),
    # the simulator and `airflow db migrate`; then the components and the children they start
    [(signal.SIGTERM, "CLC simulator:", 2), (signal.SIGINT, "Airflow is starting", 8)],
    ids=["sigterm-while-migrating", "ctrl-c-while-components-start"],
)
def test_a_stop_during_start_up_stops_every_process_and_says_so_only_then(up, signum, after, running):
    up.wait_for(after, timeout=120)
    deadline = time.monotonic() + 90
    while len(up.seen) < running and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(up.seen) >= running, up.output()
    assert not any("Airflow UI:" in line for line in up.stdout), "Airflow was already up"
    up.interrupt(signum)
    code, _ = up.finish(timeout=60)
    err = up.errors()

    assert code == 0
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert up.stdout[-1] == "Stopped."
    assert up.survivors() == []


def test_a_component_dying_during_start_up_is_reported_at_once_with_its_own_error(up):
    up.wait_for("CLC simulator:", timeout=120)
    with _listener(up.port):  # taken after the launcher's check: the api-server cannot bind
        code, _ = up.finish(timeout=200)
    err = up.errors()

    assert code == 1
    assert "api-server exited with code" in err
    assert "address already in use" in err
    reported = next(at for at, line in up.stderr if "api-server exited" in line)
    api_server = next(p for p, cmd in up.cmdlines.items() if b"api-server" in cmd)
    assert reported - up.last_seen[api_server] < 3, "the launcher kept waiting after the api-server had died"
    assert up.stdout[-1] == "Stopped."
    assert up.survivors() == []


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) with a listening socket on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_a_normal_run_listens_on_loopback_with_four_workers_and_leaves_nothing_behind(up):
    up.wait_for("Airflow UI:", timeout=300)
    for _ in range(60):  # the scheduler's workers, recorded by the sampling thread (slow on a busy machine)
        named = [p for p in up.seen if b"LocalExecutor" in _cmdline(p.pid)]
        # a task a worker forks keeps the worker's title until it renames itself: count only the
        # scheduler's own children, not their children
        named_pids = {p.pid for p in named}
        workers = [p for p in named if p.ppid not in named_pids]
        if len(workers) >= 4:
            break
        time.sleep(0.5)
    running = [p for p in up.seen if proctree.alive(p)]
    rss = sum(_rss(p.pid) for p in running)
    print(
        f"make up runs {len(running)} processes, RSS {rss / 2**20:.0f} MiB (shared pages counted per process)"
    )

    assert len(workers) == 4
    assert _listening_addresses(up.port) == {"0100007F"}  # 127.0.0.1 only
    assert _listening_addresses(up.sim_port) == {"0100007F"}
    assert "password" in " ".join(up.stdout)

    up.interrupt(signal.SIGINT)
    code, _ = up.finish(timeout=60)
    assert code == 0
    assert up.stdout[-1] == "Stopped."
    assert up.survivors() == []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0
