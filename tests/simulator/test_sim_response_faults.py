"""HTTP faults that damage the answer (``truncate``, ``garbage``) and the ``latency`` fault's
promise that a request is carried out even when its client leaves during the delay."""

from __future__ import annotations

import asyncio
import json

import pytest

from simulator.app import create_app
from simulator.http_common import LostResponse

STATUS_ROUTE = "GET /v2/operations/{alias}/status/{jobId}"
MAINT_ROUTE = "POST /v2/operations/{alias}/servers/startMaintenance"


def add_fault(client, **body):
    r = client.post("/_sim/faults", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def in_maintenance(client, auth, clock, sid="va1demoweb01"):
    clock.tick(30)
    return client.get(f"/v2/servers/DEMO/{sid}", headers=auth).json()["details"]["inMaintenanceMode"]


def start_maintenance(client, auth, sid="VA1DEMOWEB01"):
    return client.post("/v2/operations/DEMO/servers/startMaintenance", headers=auth, json=[sid])


# ------------------------------------------------------------------------------ truncate
def test_truncate_sends_status_and_headers_but_half_the_body(client, auth, clock):
    add_fault(client, kind="truncate", route=MAINT_ROUTE, count=1)
    r = start_maintenance(client, auth)
    full = start_maintenance(client, auth, "VA1DEMOWEB02").content  # same shape and length, unharmed
    assert r.status_code == 200 and r.headers["content-type"] == "application/json; charset=utf-8"
    assert int(r.headers["content-length"]) == len(r.content) == len(full) // 2
    assert r.content == full[: len(full) // 2].replace(b"web02", b"web01")
    with pytest.raises(ValueError):
        json.loads(r.content)
    assert in_maintenance(client, auth, clock)  # the request itself was carried out
    counters = client.get("/_sim/counters").json()
    assert counters["requests"]["POST /v2/operations/{alias}/servers/startMaintenance"] == {"200": 2}
    assert counters["faults_injected"] == {"1": 1}


def test_truncate_keep_share_and_count(client, auth):
    add_fault(client, kind="truncate", route="/v2/datacenters/{alias}", keep=0.1, count=1)
    whole = client.get("/v2/datacenters/DEMO/VA1", headers=auth).content  # other route: whole
    cut = client.get("/v2/datacenters/DEMO", headers=auth)
    again = client.get("/v2/datacenters/DEMO", headers=auth)
    assert len(cut.content) == int(len(again.content) * 0.1) and again.json()[0]["id"] == "va1"
    assert json.loads(whole)["id"] == "va1"


def test_truncate_cutting_the_connection_loses_the_answer_in_process(client, auth, clock):
    add_fault(client, kind="truncate", route=MAINT_ROUTE, cut_connection=True, count=1)
    with pytest.raises(LostResponse, match="cut after"):
        start_maintenance(client, auth)
    assert in_maintenance(client, auth, clock)


# ------------------------------------------------------------------------------ garbage
def test_garbage_html_page_with_200_after_carrying_the_request_out(client, auth, clock):
    add_fault(client, kind="garbage", route=MAINT_ROUTE, count=1)
    r = start_maintenance(client, auth)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text.lstrip().startswith("<!DOCTYPE html>")
    assert in_maintenance(client, auth, clock)


def test_garbage_not_processed_leaves_the_state_alone(client, auth, clock):
    add_fault(client, kind="garbage", route=MAINT_ROUTE, processed=False, status=502, count=1)
    r = start_maintenance(client, auth)
    assert r.status_code == 502 and "<html>" in r.text
    assert not in_maintenance(client, auth, clock)
    counters = client.get("/_sim/counters").json()
    assert counters["requests"]["POST /v2/operations/{alias}/servers/startMaintenance"] == {"502": 1}
    assert counters["operations_queued"] == {}


def test_garbage_wrong_type_swaps_array_and_object(client, auth):
    add_fault(client, kind="garbage", route=MAINT_ROUTE, body="wrong_type", count=1)
    add_fault(client, kind="garbage", route=STATUS_ROUTE, body="wrong_type", count=1)
    r = start_maintenance(client, auth)
    assert r.status_code == 200 and r.json() == {"message": "OK"}  # an object where an array belongs
    job = client.get("/_sim/state").json()["jobs"]
    (job_id,) = job
    r = client.get(f"/v2/operations/DEMO/status/{job_id}", headers=auth)
    assert r.json() == [{"message": "OK"}]  # an array where {"status": …} belongs
    assert "status" in client.get(f"/v2/operations/DEMO/status/{job_id}", headers=auth).json()


def test_garbage_empty_body(client, auth):
    add_fault(client, kind="garbage", route=STATUS_ROUTE, body="empty", count=1)
    job_id = start_maintenance(client, auth).json()[0]["links"][0]["id"]
    r = client.get(f"/v2/operations/DEMO/status/{job_id}", headers=auth)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-type"] == "application/json; charset=utf-8"


def test_an_injected_error_wins_over_a_damaged_answer(client, auth, clock):
    add_fault(client, kind="garbage", route=MAINT_ROUTE, count=1)
    add_fault(client, kind="error", route=MAINT_ROUTE, status=503, count=1)
    r = start_maintenance(client, auth)
    assert r.status_code == 503 and r.json() == {"message": "The service is unavailable."}
    assert not in_maintenance(client, auth, clock)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"kind": "truncate", "keep": 1}, "keep"),
        ({"kind": "truncate", "cut_connection": "yes"}, "cut_connection"),
        ({"kind": "garbage", "body": "xml"}, "body"),
        ({"kind": "garbage", "processed": 1}, "processed"),
        ({"kind": "queue_delay"}, "seconds"),
        ({"kind": "queue_delay", "seconds": 5, "route": "/v2/*"}, "route"),
        ({"kind": "refuse_during_reboot", "server": ""}, "server"),
    ],
)
def test_invalid_new_fault_bodies_are_400(client, body, needle):
    r = client.post("/_sim/faults", json=body)
    assert r.status_code == 400 and needle in r.json()["message"]


def test_new_fault_rules_are_listed_with_their_fields(client):
    add_fault(client, kind="truncate", keep=0.25)
    add_fault(client, kind="garbage", body="empty", processed=False)
    add_fault(client, kind="refuse_during_reboot")
    listed = client.get("/_sim/faults").json()["faults"]
    assert listed[0]["keep"] == 0.25 and listed[0]["cut_connection"] is False
    assert listed[1]["body"] == "empty" and listed[1]["processed"] is False and listed[1]["status"] == 200
    assert listed[2]["kind"] == "refuse_during_reboot" and listed[2]["server"] is None


# ------------------------------------------------------------------------------ latency
def _scope(path: str, body: bytes, token: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8899),
    }


async def test_latency_carries_the_request_out_when_the_client_leaves_during_the_delay(sim, clock):
    """As uvicorn does, ``receive()`` answers ``http.disconnect`` once the client has gone,
    even when the body had arrived; the request must be carried out all the same."""
    app = create_app(sim)
    token = sim.login("demo.admin", "demo-password")["bearerToken"]
    sim.add_fault({"kind": "latency", "route": MAINT_ROUTE, "latency_ms": 300})
    body = b'["VA1DEMOWEB01"]'
    gone = asyncio.Event()
    sent: list[dict] = []

    async def receive():
        if gone.is_set():
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if not gone.is_set():
            sent.append(message)

    async def client_leaves():
        await asyncio.sleep(0.05)
        gone.set()

    path = "/v2/operations/DEMO/servers/startMaintenance"
    await asyncio.gather(app(_scope(path, body, token), receive, send), client_leaves())
    assert sent == []  # nobody was there to answer
    clock.tick(30)
    sim.advance()
    assert sim.servers["va1demoweb01"].in_maintenance is True
    assert sim.counters["operations_queued"] == {"startMaintenance": 1}
