"""Fixtures for the simulator tests: an in-process app on a manual clock (fast), and a
helper that starts the real ``python -m simulator`` process (slow tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette nags about httpx vs httpx2; irrelevant here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from simulator.app import create_app
from simulator.clock import ManualClock
from simulator.core import Simulator, SimulatorSettings
from simulator.fleet_file import load_fleet_file

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "simulator" / "fleets" / "demo.yaml"
LINUX_PKG = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"
WIN_PKG = "b229535c-a313-4a31-baf8-6aa71ff4b9ed"
START = 1_458_000_000.0  # 2016-03-15T00:00:00Z


@pytest.fixture(scope="session")
def demo_fleet():
    return load_fleet_file(DEMO)


@pytest.fixture
def clock():
    return ManualClock(START)


@pytest.fixture
def sim(demo_fleet, clock):
    return Simulator(demo_fleet, SimulatorSettings(seed=1, shuffle_batch_order=False), clock=clock)


@pytest.fixture
def client(sim):
    with TestClient(create_app(sim)) as c:
        yield c


def login(client, username="demo.admin", password="demo-password") -> dict:
    r = client.post("/v2/authentication/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['bearerToken']}"}


@pytest.fixture
def auth(client):
    return login(client)


def execute(client, auth, servers, package=LINUX_PKG, alias="DEMO"):
    body = {"servers": servers, "package": {"packageId": package, "parameters": {}}}
    return client.post(f"/v2/operations/{alias}/servers/executePackage", headers=auth, json=body)


class SimProcess:
    """A real simulator process; ``url`` is the base URL from its ready line."""

    def __init__(self, *args: str, env: dict | None = None):
        cmd = [sys.executable, "-m", "simulator", "--port", "0", *args]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or os.environ.copy(),
        )
        self.url = self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        prefix = "CLC simulator ready at "
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"simulator exited early: {self.proc.stderr.read()}")
        raise TimeoutError("simulator did not print its ready line")

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()


@pytest.fixture
def login_as(client):
    """``login_as(username, password)`` -> Authorization header dict."""
    return lambda username="demo.admin", password="demo-password": login(client, username, password)


@pytest.fixture
def run_package(client, auth):
    """``run_package(servers, package=LINUX_PKG, alias="DEMO", headers=auth)`` -> response."""

    def _run(servers, package=LINUX_PKG, alias="DEMO", headers=None):
        return execute(client, headers or auth, servers, package, alias)

    return _run


@pytest.fixture(scope="module")
def start_process():
    """Factory for real simulator processes; every process is stopped at module end."""
    started: list[SimProcess] = []

    def _start(*args: str) -> SimProcess:
        proc = SimProcess(*args)
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.stop()
