"""The new fault kinds and the docs' ``clock.start: 2016…`` example against a real process
over loopback: a client that leaves during a ``latency`` delay, a ``truncate`` that cuts the
connection mid-body, a ``garbage`` page, and a fleet whose clock starts in 2016."""

from __future__ import annotations

import socket
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from simulator.clock import parse_iso

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
LINUX = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"
CLOCK_START = "2016-03-14T02:00:00Z"  # the docs' example


@pytest.fixture(scope="module")
def fleet_2016(tmp_path_factory) -> Path:
    text = (ROOT / "simulator" / "fleets" / "demo.yaml").read_text()
    text = text.replace("version: 1\n", f'version: 1\nclock: {{start: "{CLOCK_START}"}}\n', 1)
    path = tmp_path_factory.mktemp("fleet") / "demo-2016.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def live(start_process, fleet_2016):
    return start_process("--fleet", str(fleet_2016), "--time-scale", "1", "--seed", "5")


@pytest.fixture
def http(live):
    with httpx.Client(base_url=live.url, timeout=10) as c:
        assert c.post("/_sim/reset").status_code == 200
        token = c.post(
            "/v2/authentication/login", json={"username": "demo.admin", "password": "demo-password"}
        ).json()["bearerToken"]
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def raw_post(url: str, path: str, body: bytes, token: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.hostname}\r\nAuthorization: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def maintenance_after_the_job(http, sid="va1demoweb01") -> bool:
    http.post("/_sim/clock/advance", json={"seconds": 30})
    return http.get(f"/v2/servers/DEMO/{sid}").json()["details"]["inMaintenanceMode"]


def test_latency_request_is_carried_out_after_the_client_left(http, live):
    http.post("/_sim/faults", json={"kind": "latency", "route": "/v2/operations/*", "latency_ms": 800})
    path = "/v2/operations/DEMO/servers/startMaintenance"
    sock = raw_post(live.url, path, b'["VA1DEMOWEB01"]', http.headers["Authorization"])
    time.sleep(0.2)
    sock.close()  # the client gives up during the delay
    time.sleep(1.2)
    http.delete("/_sim/faults")
    assert maintenance_after_the_job(http) is True
    assert http.get("/_sim/counters").json()["operations_queued"] == {"startMaintenance": 1}


def test_truncate_cut_connection_announces_the_length_and_dies_mid_body(http, live):
    http.post(
        "/_sim/faults",
        json={"kind": "truncate", "route": "/v2/operations/*", "cut_connection": True, "count": 1},
    )
    sock = raw_post(
        live.url,
        "/v2/operations/DEMO/servers/startMaintenance",
        b'["VA1DEMOWEB01"]',
        http.headers["Authorization"],
    )
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    declared = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    assert 0 < len(body) < declared
    assert maintenance_after_the_job(http) is True
    http.post("/_sim/faults", json={"kind": "truncate", "cut_connection": True, "count": 1})
    with pytest.raises(httpx.HTTPError):  # what an ordinary client meets
        http.get("/v2/servers/DEMO/va1demoweb02")


def test_garbage_page_over_the_wire(http):
    http.post("/_sim/faults", json={"kind": "garbage", "route": "GET /v2/servers/*", "count": 1})
    r = http.get("/v2/servers/DEMO/va1demoweb01")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):
        r.json()
    assert http.get("/v2/servers/DEMO/va1demoweb01").json()["id"] == "va1demoweb01"


def test_the_docs_2016_clock_example_runs_a_patch_to_completion(http):
    """The API's own clock is 2016: its Date header says so, tokens stay valid for their
    14 simulated days, and executions are stamped on that clock (clients must not compare
    them with their own clock)."""
    r = http.post(
        "/v2/operations/DEMO/servers/executePackage",
        json={"servers": ["VA1DEMOWEB01"], "package": {"packageId": LINUX, "parameters": {}}},
    )
    assert r.status_code == 200 and r.json()[0]["isQueued"] is True
    api_now = parsedate_to_datetime(r.headers["date"]).timestamp()
    assert parse_iso(CLOCK_START) <= api_now < parse_iso("2016-03-15T00:00:00Z")
    http.post("/_sim/clock/advance", json={"seconds": 4 * 3600})
    (ex,) = http.get("/patching/rest/servers/DEMO/server/va1demoweb01/patch").json()
    assert ex["status"] == "completed" and ex["start_time"].startswith("2016-03-14")
    assert parse_iso(ex["start_time"]) >= api_now
    http.post("/_sim/clock/advance", json={"seconds": 13 * 86400})  # 14-day token, simulated
    assert http.get("/v2/servers/DEMO/va1demoweb01").status_code == 200
    http.post("/_sim/clock/advance", json={"seconds": 86400})
    assert http.get("/v2/servers/DEMO/va1demoweb01").status_code == 401
