"""Every fault mode (in process, deterministic) and the admin API."""

from __future__ import annotations

import time

import pytest

from simulator.core import Simulator, SimulatorSettings
from simulator.faults import FaultRegistry
from simulator.http_common import LostResponse

STATUS_ROUTE = "GET /v2/operations/{alias}/status/{jobId}"


def add_fault(client, **body):
    r = client.post("/_sim/faults", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_error_fault_limited_to_a_count(client, auth):
    add_fault(client, kind="error", route="/v2/servers/{alias}/{serverId}", status=503, count=2)
    codes = [client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    r = client.get("/_sim/counters").json()
    assert r["requests"]["GET /v2/servers/{alias}/{serverId}"] == {"503": 2, "200": 1}
    assert client.get("/_sim/faults").json()["faults"][0]["remaining"] == 0


def test_500_body_matches_the_real_api(client, auth):
    add_fault(client, kind="error", method="GET", count=1)
    r = client.get("/v2/datacenters/DEMO", headers=auth)
    assert r.status_code == 500 and r.json() == {"message": "An error has occurred."}
    assert client.get("/_sim/health").status_code == 200  # the admin API is never faulted


def test_rate_limit_fault_sends_retry_after(client, auth):
    add_fault(client, kind="rate_limit", route=STATUS_ROUTE, retry_after=7, count=1)
    job = client.post("/v2/operations/DEMO/servers/reboot", headers=auth, json=["VA1DEMOWEB01"]).json()
    job_id = job[0]["links"][0]["id"]
    r = client.get(f"/v2/operations/DEMO/status/{job_id}", headers=auth)
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert client.get(f"/v2/operations/DEMO/status/{job_id}", headers=auth).status_code == 200


def test_rate_based_errors_are_deterministic_with_the_seed(demo_fleet):
    def pattern(seed):
        reg = FaultRegistry(seed)
        reg.add({"kind": "error", "rate": 0.5})
        return [reg.for_request("GET", "/v2/x").status for _ in range(40)]

    assert pattern(3) == pattern(3)
    assert pattern(3) != pattern(4)
    assert 5 < sum(1 for s in pattern(3) if s) < 35


def test_latency_fault_delays_the_answer(client, auth):
    add_fault(client, kind="latency", route="/v2/datacenters/*", latency_ms=300, count=1)
    t = time.perf_counter()
    assert client.get("/v2/datacenters/DEMO", headers=auth).status_code == 200
    assert time.perf_counter() - t >= 0.3
    t = time.perf_counter()
    client.get("/v2/datacenters/DEMO", headers=auth)
    assert time.perf_counter() - t < 0.3


def test_drop_fault_applies_the_change_but_loses_the_response(client, auth, clock):
    add_fault(client, kind="drop", route="POST /v2/operations/{alias}/servers/startMaintenance", count=1)
    with pytest.raises(LostResponse):
        client.post("/v2/operations/DEMO/servers/startMaintenance", headers=auth, json=["VA1DEMOWEB01"])
    clock.tick(30)
    assert client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["inMaintenanceMode"]
    counters = client.get("/_sim/counters").json()
    assert counters["requests"]["POST /v2/operations/{alias}/servers/startMaintenance"] == {"200": 1}
    assert counters["faults_injected"] == {"1": 1}


def test_dropped_execute_package_retry_is_rejected_as_duplicate(client, auth, run_package):
    add_fault(client, kind="drop", route="/v2/operations/{alias}/servers/executePackage", count=1)
    with pytest.raises(LostResponse):
        run_package(["VA1DEMOWEB01"])
    r = run_package(["VA1DEMOWEB01"])  # the client retries after the lost response
    assert r.status_code == 400 and r.json()[0]["isQueued"] is False
    counters = client.get("/_sim/counters").json()
    assert counters["executions_per_server"] == {"va1demoweb01": 1}
    assert counters["duplicate_executions_rejected"] == {"va1demoweb01": 1}


def test_token_revocation_and_early_expiry(client, auth, login_as, clock):
    r = client.post("/_sim/faults", json={"kind": "revoke_tokens"})
    assert r.status_code == 201 and r.json()["revoked_before"] == "2016-03-15T00:00:00Z"
    assert client.get("/v2/datacenters/DEMO", headers=auth).status_code == 401
    fresh = login_as()
    assert client.get("/v2/datacenters/DEMO", headers=fresh).status_code == 200
    add_fault(client, kind="token_expiry", seconds=60)
    clock.tick(61)
    assert client.get("/v2/datacenters/DEMO", headers=fresh).status_code == 401
    client.delete("/_sim/faults")
    assert client.get("/v2/datacenters/DEMO", headers=fresh).status_code == 200


def test_stuck_execution_stays_pending_forever(client, auth, clock, run_package):
    add_fault(client, kind="stuck_execution", server="VA1DEMOWEB02")
    run_package(["VA1DEMOWEB01", "VA1DEMOWEB02"])
    clock.tick(10 * 86400)
    s1 = client.get("/patching/rest/servers/DEMO/server/va1demoweb01/patch", headers=auth).json()
    s2 = client.get("/patching/rest/servers/DEMO/server/va1demoweb02/patch", headers=auth).json()
    assert s1[0]["status"] == "completed"
    assert (
        s2[0]["status"] == "pending"
        and s2[0]["end_time"] == ""
        and s2[0]["init_messages"][-1]["end_time"] == ""
    )
    assert [m["server"] for m in client.get("/_sim/outbox?kind=patch_completed").json()["emails"]] == [
        "va1demoweb01"
    ]


def test_server_that_never_comes_back_from_a_reboot(client, auth, clock, run_package):
    run_package(["VA1DEMOWEB01"])
    clock.tick(60)  # fault injected while the execution is already running
    add_fault(client, kind="no_return_from_reboot", server="va1demoweb01")
    clock.tick(10 * 86400)
    server = client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()
    assert server["details"]["powerState"] == "stopped"
    (ex,) = client.get("/patching/rest/servers/DEMO/server/va1demoweb01/patch", headers=auth).json()
    assert ex["status"] == "pending"
    # a plain reboot of another server with the fault also never comes back
    add_fault(client, kind="no_return_from_reboot", server="va1demoweb02")
    client.post("/v2/operations/DEMO/servers/reboot", headers=auth, json=["VA1DEMOWEB02"])
    clock.tick(600)
    assert (
        client.get("/v2/servers/DEMO/va1demoweb02", headers=auth).json()["details"]["powerState"] == "stopped"
    )


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"kind": "explode"}, "kind"),
        ({"kind": "error", "status": 404}, "status"),
        ({"kind": "error", "rate": 2}, "rate"),
        ({"kind": "stuck_execution"}, "server"),
        ({"kind": "latency", "colour": "red"}, "colour"),
    ],
)
def test_invalid_fault_bodies_are_400(client, body, needle):
    r = client.post("/_sim/faults", json=body)
    assert r.status_code == 400 and needle in r.json()["message"]


def test_fault_list_and_delete_one(client):
    a = add_fault(client, kind="latency", latency_ms=5)
    b = add_fault(client, kind="error", route="/v2/*")
    assert [f["id"] for f in client.get("/_sim/faults").json()["faults"]] == [a["id"], b["id"]]
    assert client.delete(f"/_sim/faults/{a['id']}").status_code == 200
    assert client.delete(f"/_sim/faults/{a['id']}").status_code == 404
    assert [f["kind"] for f in client.get("/_sim/faults").json()["faults"]] == ["error"]
    r = client.post("/_sim/faults", json=[{"kind": "latency"}, {"kind": "drop", "count": 1}])
    assert r.status_code == 201 and len(r.json()["faults"]) == 2


# ------------------------------------------------------------------------------ admin API
def test_health_clock_and_scale(client, clock):
    h = client.get("/_sim/health").json()
    assert h["status"] == "ok" and h["servers"] == 40
    c = client.get("/_sim/clock").json()
    assert c["now"] == "2016-03-15T00:00:00Z" and c["time_scale"] == 1.0
    c = client.post("/_sim/clock/advance", json={"seconds": 3600}).json()
    assert c["now"] == "2016-03-15T01:00:00Z"
    assert client.post("/_sim/clock/advance", json={"seconds": -1}).status_code == 400
    assert client.post("/_sim/clock/scale", json={"time_scale": 0.01}).json()["time_scale"] == 0.01
    assert client.post("/_sim/clock/scale", json={"time_scale": 0}).status_code == 400


def test_clock_advance_drives_patching(client, auth, run_package):
    run_package(["VA1DEMOWEB01"])
    client.post("/_sim/clock/advance", json={"seconds": 4 * 3600})
    ex = client.get("/patching/rest/servers/DEMO/server/va1demoweb01/patch", headers=auth).json()
    assert ex[0]["status"] == "completed"


def test_reset_restores_the_fleet_and_zeroes_counters(client, auth, clock, run_package):
    client.post("/v2/operations/DEMO/servers/powerOff", headers=auth, json=["VA1DEMOWEB01"])
    run_package(["VA1DEMOWEB02"])
    add_fault(client, kind="latency", latency_ms=1)
    clock.tick(600)
    assert (
        client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["powerState"] == "stopped"
    )
    assert client.post("/_sim/reset").status_code == 200
    counters = client.get("/_sim/counters").json()
    assert counters["executions_per_server"] == {} and list(counters["requests"]) == ["POST /_sim/reset"]
    assert (
        client.get("/_sim/outbox").json()["emails"] == []
        and client.get("/_sim/faults").json()["faults"] == []
    )
    assert (
        client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["powerState"] == "started"
    )
    assert client.get("/patching/rest/servers/DEMO/server/va1demoweb02/patch", headers=auth).json() == []


def test_state_dump_and_config(client, auth, run_package, clock):
    run_package(["VA1DEMOWEB01"])
    clock.tick(60)
    state = client.get("/_sim/state").json()
    assert state["servers"]["va1demoweb01"]["activeExecution"].startswith("VA1-")
    assert len(state["jobs"]) == 1 and len(state["executions"]) == 1
    assert client.post("/_sim/config", json={"strict_package_os": True}).json()["strict_package_os"] is True
    assert client.post("/_sim/config", json={"nope": 1}).status_code == 400
    assert client.post("/_sim/config", json={"shuffle_batch_order": "yes"}).status_code == 400


def test_outbox_filters(client, run_package):
    run_package(["VA1DEMOWEB01", "VA1DEMOWEB02"])
    assert len(client.get("/_sim/outbox").json()["emails"]) == 2
    assert [m["server"] for m in client.get("/_sim/outbox?server=VA1DEMOWEB02").json()["emails"]] == [
        "va1demoweb02"
    ]


def test_persistence_round_trip_in_process(tmp_path, demo_fleet, clock):
    settings = SimulatorSettings(seed=1, state_file=str(tmp_path / "state.json"))
    sim = Simulator(demo_fleet, settings, clock=clock)
    from simulator.auth import Principal

    me = Principal("demo.admin", "DEMO", "VA1", ("AccountAdmin",), 0, 2**40)
    sim.execute_package(me, "DEMO", ["VA1DEMOWEB01"], "c3c6642e-24e1-4c37-b56a-1cf1476ee360", {})
    sim.count_request("GET /x", 200)
    sim.flush_counters()
    again = Simulator(
        demo_fleet, SimulatorSettings(seed=1, state_file=str(tmp_path / "state.json")), clock=clock
    )
    assert again.servers["va1demoweb01"].active_execution == sim.servers["va1demoweb01"].active_execution
    assert again.counters["requests"] == {"GET /x": {"200": 1}}
    assert len(again.outbox) == 1 and again.next_job_no == sim.next_job_no
    other = demo_fleet.__class__(**{**demo_fleet.__dict__, "digest": "different"})
    with pytest.raises(ValueError, match="different fleet"):
        Simulator(other, SimulatorSettings(state_file=str(tmp_path / "state.json")), clock=clock)


def test_time_scale_is_wall_seconds_per_simulated_second():
    from simulator.clock import Clock

    wall = [1000.0]
    clock = Clock(start=0.0, time_scale=0.01, wall=lambda: wall[0])
    wall[0] += 18  # 18 s of wall time ...
    assert clock.now() == pytest.approx(1800)  # ... is a 30-minute patch
    assert clock.wall_seconds_until(3600) == pytest.approx(18)
    clock.set_scale(1.0)
    wall[0] += 10
    assert clock.now() == pytest.approx(1810)
