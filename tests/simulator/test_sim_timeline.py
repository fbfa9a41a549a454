"""``/_sim/timeline``: executions and maintenance intervals as the simulator applied them."""

from __future__ import annotations

import pytest

from simulator.core import Simulator, SimulatorSettings
from simulator.timeline import maintenance_intervals, record_maintenance
from tests.simulator.conftest import START, execute


def maintenance(client, auth, op, server):
    r = client.post(f"/v2/operations/DEMO/servers/{op}", headers=auth, json=[server])
    assert r.status_code == 200, r.text


def test_execution_and_maintenance_intervals_in_sim_and_wall_time(client, auth, clock):
    maintenance(client, auth, "startMaintenance", "VA1DEMOWEB01")
    clock.tick(30)
    assert execute(client, auth, ["VA1DEMOWEB01"]).status_code == 200
    clock.tick(30)
    maintenance(client, auth, "stopMaintenance", "VA1DEMOWEB01")  # while the execution runs
    clock.tick(4 * 3600)
    view = client.get("/_sim/timeline").json()
    web = view["servers"]["va1demoweb01"]
    assert web["initially_in_maintenance"] is False
    [ex] = web["executions"]
    assert ex["completed"] is True and ex["halted"] is False
    assert START + 30 < ex["start"] < ex["end"] <= clock.now()
    # the manual clock runs at scale 1 with wall == sim
    assert (ex["start_wall"], ex["end_wall"]) == (ex["start"], ex["end"])
    [interval] = web["maintenance"]
    assert START < interval["on"] < ex["start"] and ex["start"] < interval["off"] < ex["end"]
    assert interval["off_wall"] == interval["off"]


def test_server_in_maintenance_from_the_fleet_file_reads_on_since_the_start(client):
    stg = client.get("/_sim/timeline", params={"server": "VA1DEMOSTG01"}).json()["servers"]
    assert stg == {
        "va1demostg01": {
            "initially_in_maintenance": True,
            "executions": [],
            "maintenance": [{"on": None, "off": None, "on_wall": None, "off_wall": None}],
        }
    }


def test_untouched_servers_are_left_out(client, auth, clock):
    maintenance(client, auth, "startMaintenance", "VA1DEMOWEB02")
    clock.tick(30)
    servers = client.get("/_sim/timeline").json()["servers"]
    assert set(servers) == {"va1demoweb02", "va1demostg01"}
    assert [(i["on"] is not None, i["off"]) for i in servers["va1demoweb02"]["maintenance"]] == [(True, None)]


def test_a_change_to_the_same_value_is_not_recorded(sim):
    server = sim.servers["va1demoweb01"]
    log: dict = {}
    record_maintenance(log, server, START, False)
    assert log == {}
    record_maintenance(log, server, START, True)
    assert log == {"va1demoweb01": [[START, True]]}


def test_reset_forgets_the_timeline(client, auth, clock):
    maintenance(client, auth, "startMaintenance", "VA1DEMOWEB02")
    clock.tick(30)
    client.post("/_sim/reset")
    assert set(client.get("/_sim/timeline").json()["servers"]) == {"va1demostg01"}


def test_timeline_survives_a_restart_with_a_state_file(demo_fleet, clock, tmp_path):
    settings = SimulatorSettings(seed=1, state_file=str(tmp_path / "state.json"))
    sim = Simulator(demo_fleet, settings, clock=clock)
    sim.maintenance_log["va1demoweb01"] = [[START + 5, True]]
    sim.commit()
    again = Simulator(
        demo_fleet, SimulatorSettings(seed=1, state_file=str(tmp_path / "state.json")), clock=clock
    )
    assert again.maintenance_log == {"va1demoweb01": [[START + 5, True]]}


@pytest.mark.parametrize(
    ("initially_on", "changes", "expected"),
    [
        (False, [], []),
        (True, [], [(None, None)]),
        (False, [[10, True], [20, False], [30, True]], [(10, 20), (30, None)]),
        (True, [[5, False], [8, True], [9, False]], [(None, 5), (8, 9)]),
    ],
)
def test_maintenance_intervals(initially_on, changes, expected):
    assert maintenance_intervals(initially_on, changes, now=100) == expected


def test_patch_reads_are_counted_by_where_the_execution_stood(client, auth, clock):
    summary = "/patching/rest/servers/DEMO/server/VA1DEMOWEB01/patch"
    client.get(summary, headers=auth)  # never patched
    assert execute(client, auth, ["VA1DEMOWEB01"]).status_code == 200
    clock.tick(10)
    [ex] = client.get(summary, headers=auth).json()
    clock.tick(4 * 3600)
    client.get(summary, headers=auth)  # the first read showing it completed
    client.get(f"{summary}/{ex['execution_id']}", headers=auth)  # then the detail
    counters = client.get("/_sim/counters").json()
    assert counters["summary_reads"] == {"no_execution": 1, "scanning": 1, "completion_seen": 1}
    assert counters["detail_reads"] == {"completed": 1}
    [late] = counters["completion_seen_after"]
    assert 0 < late < 4 * 3600
