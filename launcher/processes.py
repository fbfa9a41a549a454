"""Start and stop the local processes the demo, `make up`, tests and benchmarks need.

Every process is started in its own process group so that stopping it also stops its
children (Airflow components fork workers), and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from launcher import proctree
from launcher.env import PROJECT_ROOT

READY_PREFIX = "CLC simulator ready at "


class SimulatorProcess:
    """The CLC simulator as a real HTTP server process on loopback."""

    def __init__(
        self,
        fleet: Path | str | None = None,
        *,
        time_scale: float = 0.01,
        seed: int = 7,
        port: int = 0,
        host: str = "127.0.0.1",
        args: Sequence[str] = (),
        log_path: Path | None = None,
    ) -> None:
        self.cmd = [
            sys.executable,
            "-m",
            "simulator",
            "--host",
            host,
            "--port",
            str(port),
            "--time-scale",
            str(time_scale),
            "--seed",
            str(seed),
            *args,
        ]
        if fleet is not None:
            self.cmd += ["--fleet", str(fleet)]
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def start(self, timeout: float = 30.0) -> str:
        """Start the server and return its base URL once it says it is ready."""
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if line.startswith(READY_PREFIX):
                self.base_url = line[len(READY_PREFIX) :].strip()
                threading.Thread(target=self._drain, daemon=True).start()
                return self.base_url
        code = self.proc.poll()
        self.stop()
        tail = "".join(seen[-20:]).rstrip()
        if code is not None:
            raise ComponentExited("CLC simulator", code, tail)
        raise RuntimeError(f"CLC simulator did not become ready within {timeout:.0f} s:\n{tail}")

    def _drain(self) -> None:
        """Keep reading the server's output so its pipe never fills; copy it to the log file."""
        assert self.proc is not None and self.proc.stdout is not None
        sink = self.log_path.open("a") if self.log_path else None
        for line in self.proc.stdout:
            if sink:
                sink.write(line)
                sink.flush()
        if sink:
            sink.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)
            self.proc = None

    def __enter__(self) -> SimulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' if there is none yet)."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


class ComponentExited(RuntimeError):
    """A long-running process ended on its own; carries the end of its log for the user."""

    def __init__(self, name: str, returncode: int, log_tail: str) -> None:
        super().__init__(f"{name} exited with code {returncode}; the end of its log:\n{log_tail}")
        self.name, self.returncode, self.log_tail = name, returncode, log_tail


class Components:
    """Named long-running processes, each in a session of its own, each logging to ``<name>.log``.

    Own sessions keep a terminal's Ctrl-C away from them (the launcher decides how they stop)
    and make each one a process group that :func:`stop_groups` can stop as a whole.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: Sequence[str], env: dict[str, str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(name).open("w") as log:
            self.procs[name] = subprocess.Popen(
                cmd, env=env, cwd=PROJECT_ROOT, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
            )
        return self.procs[name]

    def check(self, lines: int = 40) -> None:
        """Raise :class:`ComponentExited` for the first component that is no longer running."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ComponentExited(name, proc.returncode, self.log_tail(name, lines))

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 40) -> str:
        return log_tail(self.log_path(name), lines)

    def stop(self, grace: float = 20.0) -> list[int]:
        """Stop all of them at once; the pids that survived (normally none)."""
        left = stop_groups(list(self.procs.values()), grace)
        self.procs.clear()
        return left


def stop_process_group(proc: subprocess.Popen, timeout: float = 20.0) -> list[int]:
    """Stop one process started with ``start_new_session=True``; see :func:`stop_groups`."""
    return stop_groups([proc], timeout)


def stop_groups(procs: Sequence[subprocess.Popen], grace: float = 20.0) -> list[int]:
    """Stop processes started with ``start_new_session=True``, with everything they started.

    SIGTERM goes to each one's process group (and the groups its descendants moved to) at once,
    so components shut down in parallel; whatever is still there after ``grace`` gets SIGKILL.
    Returns only when every one of those processes is gone, or returns the pids that survived
    even SIGKILL (normally none) — so a caller can say "stopped" truthfully.
    """
    everyone = proctree.snapshot()
    targets: set[proctree.ProcInfo] = set()
    for proc in procs:
        targets |= proctree.family(proc.pid, everyone)
    groups = {proc.pid for proc in procs} | {p.pgid for p in targets}
    groups.discard(os.getpgrp())  # never our own group: a caller's process is not a target
    _signal(groups, {p for p in targets if p.pgid not in groups}, signal.SIGTERM)
    left = _wait_gone(procs, groups, targets, grace)
    if left:
        _signal(groups, left, signal.SIGKILL)
        left = _wait_gone(procs, groups, left, 10.0)
    return sorted(p.pid for p in left)


def _signal(groups: set[int], procs: set[proctree.ProcInfo], signum: int) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)
    for p in procs:
        if proctree.alive(p):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p.pid, signum)


def _wait_gone(
    procs: Sequence[subprocess.Popen], groups: set[int], targets: set[proctree.ProcInfo], timeout: float
) -> set[proctree.ProcInfo]:
    """Wait until no target and no member of ``groups`` is alive; return those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        for proc in procs:
            proc.poll()  # reap our own children, or they would linger as zombies
        left = {p for p in targets if proctree.alive(p)}
        # a process forked after the snapshot is still in its parent's group
        left |= {p for p in proctree.snapshot() if p.pgid in groups}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)
