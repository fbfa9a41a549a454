"""Real processes for the end-to-end tests: one migrated metadata DB and simulators on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from include.launcher.processes import SimulatorProcess

ROOT = Path(__file__).resolve().parents[2]
E2E_FLEET = ROOT / "tests" / "fleets" / "e2e.yaml"


class SimulatorClient:
    """Admin and CLC calls the tests make to check what really happened on the 'cloud'."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def reset(self) -> None:
        self.call("POST", "/_sim/reset")

    def counters(self) -> dict:
        return self.call("GET", "/_sim/counters")

    def fault(self, **spec: Any) -> None:
        self.call("POST", "/_sim/faults", spec)

    def login(self, user: str, password: str) -> str:
        return self.call("POST", "/v2/authentication/login", {"username": user, "password": password})[
            "bearerToken"
        ]

    def server(self, alias: str, server_id: str, token: str) -> dict:
        return self.call("GET", f"/v2/servers/{alias}/{server_id}", token=token)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Migrate the session's SQLite metadata DB once (AIRFLOW_HOME comes from tests/conftest.py)."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def e2e_simulator(tmp_path_factory):
    log = tmp_path_factory.mktemp("sim") / "simulator.log"
    with SimulatorProcess(E2E_FLEET, time_scale=0.01, log_path=log) as sim:
        yield SimulatorClient(sim.base_url)
