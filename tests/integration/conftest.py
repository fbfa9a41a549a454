"""Real processes for the end-to-end tests: one migrated metadata DB and simulators on loopback."""

from __future__ import annotations

import email
import json
import socket
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from launcher.processes import SimulatorProcess
from tests.sim_client import SimulatorClient

ROOT = Path(__file__).resolve().parents[2]
E2E_FLEET = ROOT / "tests" / "fleets" / "e2e.yaml"


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


@pytest.fixture(scope="module")
def e2e_simulator(tmp_path_factory):
    log = tmp_path_factory.mktemp("sim") / "simulator.log"
    with SimulatorProcess(E2E_FLEET, time_scale=0.01, log_path=log) as sim:
        yield SimulatorClient(sim.base_url)
