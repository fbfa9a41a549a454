"""The real ``python -m simulator`` process over loopback (one per module)."""

from __future__ import annotations

import re
import socket
import time

import httpx
import pytest
from aiosmtpd.controller import Controller

pytestmark = pytest.mark.slow
LINUX = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"


class _Inbox:
    def __init__(self):
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def smtp():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def live(start_process, smtp):
    _, port = smtp
    return start_process(
        "--fleet",
        "simulator/fleets/demo.yaml",
        "--time-scale",
        "1",
        "--seed",
        "3",
        "--smtp",
        f"127.0.0.1:{port}",
    )


@pytest.fixture(scope="module")
def http(live):
    with httpx.Client(base_url=live.url, timeout=10) as c:
        token = c.post(
            "/v2/authentication/login", json={"username": "demo.admin", "password": "demo-password"}
        )
        c.headers["Authorization"] = f"Bearer {token.json()['bearerToken']}"
        yield c


def test_ready_line_gives_a_loopback_base_url(live):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", live.url)
    assert httpx.get(f"{live.url}/_sim/health").json()["status"] == "ok"


def test_inventory_walk_over_http(http):
    dcs = http.get("/v2/datacenters/DEMO", params={"groupLinks": "true"}).json()
    total = 0
    for dc in dcs:
        root = next(link["id"] for link in dc["links"] if link["rel"] == "group")
        group = http.get(f"/v2/groups/demo/{root}", params={"serverDetail": "detailed"}).json()
        total += group["serversCount"]
    assert total == 32  # DEMO's own servers; sub-account and foreign ones are elsewhere


def test_full_patch_flow_with_smtp_delivery(http, smtp):
    inbox, _ = smtp
    r = http.post(
        "/v2/operations/DEMO/servers/executePackage",
        json={"servers": ["VA1DEMOEMPTY01"], "package": {"packageId": LINUX, "parameters": {}}},
    )
    assert r.status_code == 200
    job = r.json()[0]["links"][0]["href"]
    http.post("/_sim/clock/advance", json={"seconds": 30})
    assert http.get(job).json() == {"status": "succeeded"}
    http.post("/_sim/clock/advance", json={"seconds": 120})
    (ex,) = http.get("/patching/rest/servers/DEMO/server/va1demoempty01/patch").json()
    assert ex["status"] == "completed"
    deadline = time.monotonic() + 10
    while len(inbox.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    subjects = [m for m in inbox.messages if ex["execution_id"] in m]
    assert len(subjects) == 2 and any("Patching completed successfully" in m for m in subjects)
    assert http.get("/_sim/counters").json()["emails"]["smtp_sent"] >= 2


def test_dropped_response_closes_the_socket_after_the_change(http, live):
    http.post(
        "/_sim/faults",
        json={"kind": "drop", "route": "/v2/operations/{alias}/servers/startMaintenance", "count": 1},
    )
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v2/operations/DEMO/servers/startMaintenance", json=["VA1DEMODB01"])
    http.post("/_sim/clock/advance", json={"seconds": 30})
    assert http.get("/v2/servers/DEMO/va1demodb01").json()["details"]["inMaintenanceMode"] is True
    assert http.get("/_sim/health").status_code == 200  # the server itself is fine


def test_error_and_429_faults_over_http(http):
    http.post(
        "/_sim/faults",
        json={"kind": "rate_limit", "route": "GET /v2/datacenters/{alias}", "retry_after": 3, "count": 1},
    )
    r = http.get("/v2/datacenters/DEMO")
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert http.get("/v2/datacenters/DEMO").status_code == 200
    http.delete("/_sim/faults")


def test_sigterm_stops_cleanly_with_exit_0(start_process):
    proc = start_process("--generate", "50", "--seed", "2")
    assert httpx.get(f"{proc.url}/_sim/health").json()["servers"] == 50
    assert proc.stop() == 0
