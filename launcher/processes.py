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
        args: Sequence[str] = (),
        log_path: Path | None = None,
    ) -> None:
        self.cmd = [
            sys.executable,
            "-m",
            "simulator",
            "--host",
            "127.0.0.1",
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
        self.stop()
        tail = "".join(seen[-20:])
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


def stop_process_group(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the whole group, then SIGKILL what is still there after ``timeout``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
