"""Real processes for the end-to-end tests: one migrated metadata DB and simulators on loopback."""

from __future__ import annotations

import email
import json
import os
import socket
import subprocess
import sys
import urllib.request
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

from launcher.processes import SimulatorProcess

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


class Inbox:
    """Messages received by a real SMTP server on loopback."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(make_header(decode_header(m["Subject"]))) for m in self.messages]


@pytest.fixture(scope="module")
def smtp_inbox():
    """An SMTP server on 127.0.0.1 and the `smtp_default` connection pointing at it."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
            "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0, "timeout": 5}}  # fmt: skip
    inbox.connection = json.dumps(conn)
    try:
        yield inbox
    finally:
        controller.stop()


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
