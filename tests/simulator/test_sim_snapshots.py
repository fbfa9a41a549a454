"""Snapshots as reference §10 and §12 #12-#13 describe them: create (1-10 days, one per
server, nothing over 1 TB), expiry on the simulated clock, the ``details.snapshots`` shape,
restore that rolls the patch state back, delete, the queue jobs and their timings, the
opt-in snapshot faults, a fleet server that already has its owner's snapshot, and
persistence of all of it."""

from __future__ import annotations

import textwrap

import pytest

from simulator.auth import Principal
from simulator.clock import Clock, iso
from simulator.core import SNAPSHOT_EXISTS_MESSAGE, SNAPSHOT_TOO_BIG_MESSAGE, Simulator, SimulatorSettings
from simulator.fleet_file import FleetFileError, load_fleet_dict

CREATE = "/v2/operations/DEMO/servers/createSnapshot"
WEB01_PATCHES = [
    "bash-4.1.2-33.el6_7.1.x86_64",
    "openssl-1.0.1e-42.el6_7.4.x86_64",
    "tzdata-2016b-1.el6.noarch",
]
PATCH_RUN = 3600  # simulated seconds: more than VA1DEMOWEB01's whole patch run takes
ME = Principal("demo.admin", "DEMO", "VA1", ("AccountAdmin",), 0, 2**40)


def create(client, auth, ids, days=3):
    return client.post(CREATE, headers=auth, json={"snapshotExpirationDays": days, "serverIds": ids})


def snapshots(client, auth, sid):
    return client.get(f"/v2/servers/DEMO/{sid}", headers=auth).json()["details"]["snapshots"]


def power(client, auth, sid):
    return client.get(f"/v2/servers/DEMO/{sid}", headers=auth).json()["details"]["powerState"]


def link(snapshot, rel):
    return next(entry["href"] for entry in snapshot["links"] if entry["rel"] == rel)


def status(client, auth, job_id):
    return client.get(f"/v2/operations/DEMO/status/{job_id}", headers=auth).json()["status"]


def installed(client, sid):
    return client.get("/_sim/state").json()["servers"][sid]["installedPatches"]


def summary(client, auth, sid):
    return client.get(f"/patching/rest/servers/DEMO/server/{sid}/patch", headers=auth).json()


def add_fault(client, **body):
    r = client.post("/_sim/faults", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def snapshot_now(client, auth, clock, sid="VA1DEMOWEB01"):
    """Take a snapshot and wait for it; returns its ``details.snapshots`` entry."""
    assert create(client, auth, [sid]).status_code == 200
    clock.tick(2 + 120)
    (snap,) = snapshots(client, auth, sid.lower())
    return snap


def patch_fully(client, auth, clock, run_package, sid="VA1DEMOWEB01"):
    assert run_package([sid]).json()[0]["isQueued"] is True
    clock.tick(PATCH_RUN)
    assert summary(client, auth, sid.lower())[-1]["status"] == "completed"


def restore(client, auth, clock, snap, wait=True):
    r = client.post(link(snap, "restore"), headers=auth, json={})
    assert r.status_code == 200 and set(r.json()) == {"rel", "href", "id"}
    if wait:
        clock.tick(2 + 40)
    return r.json()["id"]


# ------------------------------------------------------------------------------ create
@pytest.mark.parametrize("days", [0, 11, -1, "0", "11", "seven", True, None])
def test_expiration_days_outside_1_to_10_is_400_with_model_state(client, auth, days):
    r = create(client, auth, ["VA1DEMOWEB01"], days)
    assert r.status_code == 400
    assert r.json() == {
        "message": "The request is invalid.",
        "modelState": {"snapshotExpirationDays": ["The value must be between 1 and 10."]},
    }
    assert client.get("/_sim/state").json()["jobs"] == {}


@pytest.mark.parametrize("days", [1, 10, "1", "10"])
def test_expiration_days_1_to_10_as_integer_or_string_are_accepted(client, auth, days):
    r = create(client, auth, ["VA1DEMOWEB01"], days)
    assert r.status_code == 200 and r.json()[0]["isQueued"] is True


def test_one_job_per_batch_taken_serially_with_the_reference_shape(client, auth, clock):
    t0 = clock.now()
    r = create(client, auth, ["VA1DEMOWEB01", "va1demoweb02"])
    assert r.status_code == 200
    (job,) = {e["links"][0]["id"] for e in r.json()}
    assert r.json()[0]["links"][0] == {
        "rel": "status",
        "href": f"/v2/operations/demo/status/{job}",
        "id": job,
    }
    clock.tick(1)
    assert status(client, auth, job) == "notStarted"  # the 2 s queue delay
    clock.tick(2 + 119 - 1)
    assert status(client, auth, job) == "executing" and snapshots(client, auth, "va1demoweb01") == []
    clock.tick(1)  # the first server's 120 s turn is over
    (snap,) = snapshots(client, auth, "va1demoweb01")
    assert snapshots(client, auth, "va1demoweb02") == []
    assert snap == {
        "name": iso(t0 + 122)[:-1].replace("T", "."),
        "links": [
            {"rel": "self", "href": "/v2/servers/demo/va1demoweb01/snapshots/1"},
            {"rel": "delete", "href": "/v2/servers/demo/va1demoweb01/snapshots/1"},
            {"rel": "restore", "href": "/v2/servers/demo/va1demoweb01/snapshots/1/restore"},
        ],
    }
    clock.tick(119)
    assert status(client, auth, job) == "executing"
    clock.tick(1)
    assert status(client, auth, job) == "succeeded" and len(snapshots(client, auth, "va1demoweb02")) == 1


def test_one_snapshot_per_server_while_taken_and_once_taken(client, auth, clock):
    assert create(client, auth, ["VA1DEMOWEB01"]).status_code == 200
    for wait in (10, 200):  # while it is being taken, then once it exists
        clock.tick(wait)
        r = create(client, auth, ["VA1DEMOWEB01"])
        assert r.status_code == 400
        assert r.json() == [
            {"server": "va1demoweb01", "isQueued": False, "errorMessage": SNAPSHOT_EXISTS_MESSAGE}
        ]
    r = create(client, auth, ["VA1DEMOWEB01", "VA1DEMOWEB02"])  # the other server is still taken
    assert r.status_code == 200
    assert {e["server"]: e["isQueued"] for e in r.json()} == {"va1demoweb01": False, "va1demoweb02": True}
    clock.tick(200)
    assert len(snapshots(client, auth, "va1demoweb01")) == 1


def test_servers_over_1_tb_cannot_be_snapshotted(client, auth, sim):
    r = create(client, auth, ["UC1DEMOBIG01"])  # the demo fleet's 2 TB data node
    assert r.status_code == 400
    assert r.json() == [
        {"server": "uc1demobig01", "isQueued": False, "errorMessage": SNAPSHOT_TOO_BIG_MESSAGE}
    ]
    sim.servers["va1demoweb02"].storage_gb = 1025
    sim.servers["va1demoweb03"].storage_gb = 1024  # exactly 1 TB is not more than 1 TB
    r = create(client, auth, ["VA1DEMOWEB02", "VA1DEMOWEB03"])
    assert {e["server"]: e.get("errorMessage") for e in r.json()} == {
        "va1demoweb02": SNAPSHOT_TOO_BIG_MESSAGE,
        "va1demoweb03": None,
    }


def test_snapshot_disappears_at_its_expiry_on_the_simulated_clock(client, auth, clock):
    snap_name = snapshot_now(client, auth, clock)["name"]  # snapshotExpirationDays: 3
    clock.tick(3 * 86400 - 1)
    assert [s["name"] for s in snapshots(client, auth, "va1demoweb01")] == [snap_name]
    clock.tick(1)
    assert snapshots(client, auth, "va1demoweb01") == []
    assert client.get("/_sim/state").json()["servers"]["va1demoweb01"]["snapshots"] == []
    again = snapshot_now(client, auth, clock)  # the one-per-server rule no longer applies
    assert link(again, "self").endswith("/snapshots/2")


# ------------------------------------------------------------------------------ restore
def test_restore_rolls_the_patch_state_back_and_keeps_the_history(client, auth, clock, run_package):
    snap = snapshot_now(client, auth, clock)  # taken before any patching
    patch_fully(client, auth, clock, run_package)
    assert installed(client, "va1demoweb01") == WEB01_PATCHES
    first = summary(client, auth, "va1demoweb01")
    job = restore(client, auth, clock, snap, wait=False)
    assert status(client, auth, job) == "notStarted" and power(client, auth, "va1demoweb01") == "started"
    clock.tick(2 + 39)
    assert status(client, auth, job) == "executing" and power(client, auth, "va1demoweb01") == "stopped"
    clock.tick(1)  # restore: 40 s
    assert status(client, auth, job) == "succeeded" and power(client, auth, "va1demoweb01") == "started"
    assert installed(client, "va1demoweb01") == []
    assert snapshots(client, auth, "va1demoweb01") == [snap]  # kept after a revert (§10)
    assert summary(client, auth, "va1demoweb01") == first  # the execution stays in the history
    patch_fully(client, auth, clock, run_package)  # the patches are applicable again
    second = summary(client, auth, "va1demoweb01")[-1]
    assert len(summary(client, auth, "va1demoweb01")) == 2
    assert second["init_messages"][0]["init_end_message"] == first[0]["init_messages"][0]["init_end_message"]
    assert second["init_messages"][0]["init_end_message"].startswith("Installed 3 updates")


def test_installed_patches_are_not_applicable_again_unless_a_restore_removes_them(
    client, auth, clock, run_package
):
    patch_fully(client, auth, clock, run_package)
    snap = snapshot_now(client, auth, clock)  # taken after patching: the patches are in it
    patch_fully(client, auth, clock, run_package)
    again = summary(client, auth, "va1demoweb01")[-1]
    assert [m["init_end_message"] for m in again["init_messages"]] == ["Installed 0 updates"]
    restore(client, auth, clock, snap)
    assert installed(client, "va1demoweb01") == WEB01_PATCHES
    patch_fully(client, auth, clock, run_package)
    third = summary(client, auth, "va1demoweb01")[-1]
    assert [m["init_end_message"] for m in third["init_messages"]] == ["Installed 0 updates"]


def test_restore_cuts_off_a_patch_run_that_never_ends(client, auth, clock, run_package, sim):
    snap = snapshot_now(client, auth, clock)
    add_fault(client, kind="stuck_execution", server="va1demoweb01")
    run_package(["VA1DEMOWEB01"])
    clock.tick(PATCH_RUN)
    (stuck,) = summary(client, auth, "va1demoweb01")
    assert stuck["status"] == "pending" and run_package(["VA1DEMOWEB01"]).status_code == 400
    restore(client, auth, clock, snap)
    client.delete("/_sim/faults")
    assert client.get("/_sim/state").json()["servers"]["va1demoweb01"]["activeExecution"] is None
    assert installed(client, "va1demoweb01") == []
    patch_fully(client, auth, clock, run_package)
    old, new = summary(client, auth, "va1demoweb01")
    assert old["execution_id"] == stuck["execution_id"] and old["status"] == "pending"
    assert new["status"] == "completed" and installed(client, "va1demoweb01") == WEB01_PATCHES


def test_restore_brings_back_a_server_stuck_in_a_patch_reboot_still_in_maintenance(
    client, auth, clock, run_package
):
    """The revert-on-failure case: patching never got past a reboot. Maintenance mode is a
    monitoring flag: the restore leaves it alone, and it can be switched off afterwards."""
    snap = snapshot_now(client, auth, clock)
    client.post("/v2/operations/DEMO/servers/startMaintenance", headers=auth, json=["VA1DEMOWEB01"])
    add_fault(client, kind="no_return_from_reboot", server="va1demoweb01")
    run_package(["VA1DEMOWEB01"])
    clock.tick(PATCH_RUN)
    assert power(client, auth, "va1demoweb01") == "stopped"
    assert summary(client, auth, "va1demoweb01")[0]["status"] == "pending"
    restore(client, auth, clock, snap)
    server = client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]
    assert server["powerState"] == "started" and server["inMaintenanceMode"] is True
    assert installed(client, "va1demoweb01") == []
    r = client.post("/v2/operations/DEMO/servers/stopMaintenance", headers=auth, json=["VA1DEMOWEB01"])
    assert r.status_code == 200
    clock.tick(60)
    assert (
        client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["inMaintenanceMode"]
        is False
    )


def test_restore_brings_a_stopped_server_back_started(client, auth, clock):
    snap = snapshot_now(client, auth, clock)
    client.post("/v2/operations/DEMO/servers/powerOff", headers=auth, json=["VA1DEMOWEB01"])
    clock.tick(60)
    assert power(client, auth, "va1demoweb01") == "stopped"
    restore(client, auth, clock, snap)
    assert power(client, auth, "va1demoweb01") == "started"


# ------------------------------------------------------------------------------ delete, 404s
def test_delete_is_a_30_second_job_answered_with_one_status_link(client, auth, clock):
    snap = snapshot_now(client, auth, clock)
    r = client.delete(link(snap, "delete"), headers=auth)
    assert r.status_code == 200 and r.json() == {
        "rel": "status",
        "href": f"/v2/operations/demo/status/{r.json()['id']}",
        "id": r.json()["id"],
    }
    clock.tick(2 + 29)
    assert status(client, auth, r.json()["id"]) == "executing" and snapshots(client, auth, "va1demoweb01")
    clock.tick(1)
    assert status(client, auth, r.json()["id"]) == "succeeded"
    assert snapshots(client, auth, "va1demoweb01") == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v2/servers/DEMO/va1demoweb01/snapshots/7"),
        ("POST", "/v2/servers/DEMO/va1demoweb01/snapshots/7/restore"),
        ("DELETE", "/v2/servers/DEMO/va1demonone01/snapshots/1"),
        ("POST", "/v2/servers/DEMO/va1demonone01/snapshots/1/restore"),
    ],
)
def test_unknown_snapshot_or_server_is_404(client, auth, clock, method, path):
    snapshot_now(client, auth, clock)
    r = client.request(method, path, headers=auth)
    assert r.status_code == 404 and r.json() == {"message": "The requested resource does not exist."}


def test_snapshots_of_another_account_are_out_of_reach(client, auth):
    r = client.post("/v2/servers/OTHR/va1othrweb01/snapshots/1/restore", headers=auth, json={})
    assert r.status_code == 403


# ------------------------------------------------------------------------------ faults
def test_snapshot_create_fails_fault_fails_the_job_and_takes_nothing(client, auth, clock):
    rule = add_fault(client, kind="snapshot_create_fails", server="VA1DEMOWEB01", count=1)
    assert rule["server"] == "va1demoweb01" and rule["remaining"] == 1
    r = create(client, auth, ["VA1DEMOWEB01", "VA1DEMOWEB02"])
    assert r.status_code == 200 and all(e["isQueued"] for e in r.json())  # queued as usual
    job = r.json()[0]["links"][0]["id"]
    clock.tick(2 + 240)
    assert status(client, auth, job) == "failed"
    assert snapshots(client, auth, "va1demoweb01") == [] and len(snapshots(client, auth, "va1demoweb02")) == 1
    assert client.get("/_sim/counters").json()["faults_injected"] == {str(rule["id"]): 1}
    assert link(snapshot_now(client, auth, clock), "self").endswith("/snapshots/1")  # count used up


def test_snapshot_create_fails_without_a_server_hits_every_server(client, auth, clock):
    add_fault(client, kind="snapshot_create_fails")
    r = create(client, auth, ["VA1DEMOWEB01", "VA1DEMOWEB02"])
    clock.tick(2 + 240)
    assert status(client, auth, r.json()[0]["links"][0]["id"]) == "failed"
    assert snapshots(client, auth, "va1demoweb01") == snapshots(client, auth, "va1demoweb02") == []


def test_restore_fails_fault_leaves_the_patch_state_and_ends_failed(client, auth, clock, run_package):
    snap = snapshot_now(client, auth, clock)
    patch_fully(client, auth, clock, run_package)
    add_fault(client, kind="restore_fails", server="va1demoweb01")
    job = restore(client, auth, clock, snap)
    assert status(client, auth, job) == "failed"
    assert power(client, auth, "va1demoweb01") == "started"
    assert installed(client, "va1demoweb01") == WEB01_PATCHES
    assert snapshots(client, auth, "va1demoweb01") == [snap]


def test_restore_hangs_fault_never_ends_and_the_server_stays_down(client, auth, clock, run_package):
    snap = snapshot_now(client, auth, clock)
    patch_fully(client, auth, clock, run_package)
    add_fault(client, kind="restore_hangs", count=1)
    job = restore(client, auth, clock, snap)
    clock.tick(9 * 86400)
    assert status(client, auth, job) == "executing"
    assert power(client, auth, "va1demoweb01") == "stopped"
    assert installed(client, "va1demoweb01") == WEB01_PATCHES
    assert run_package(["VA1DEMOWEB01"]).status_code == 400  # not started: cannot be patched


@pytest.mark.parametrize("kind", ["snapshot_create_fails", "restore_fails", "restore_hangs"])
@pytest.mark.parametrize(
    ("extra", "needle"), [({"route": "/v2/*"}, "route"), ({"rate": 0.5}, "rate"), ({"server": 7}, "server")]
)
def test_snapshot_fault_bodies_are_validated(client, kind, extra, needle):
    r = client.post("/_sim/faults", json={"kind": kind, **extra})
    assert r.status_code == 400 and needle in r.json()["message"]


# ---------------------------------------------------------------- fleet, time scale, persistence
def test_demo_server_with_its_owners_snapshot(client, auth, clock):
    (owners,) = snapshots(client, auth, "va1demodb01")
    assert owners["name"] == iso(clock.now() - 6 * 3600)[:-1].replace("T", ".")
    assert link(owners, "self") == "/v2/servers/demo/va1demodb01/snapshots/1"
    r = create(client, auth, ["VA1DEMODB01"])
    assert r.status_code == 400 and r.json()[0]["errorMessage"] == SNAPSHOT_EXISTS_MESSAGE
    clock.tick(5 * 86400 - 6 * 3600)  # expiration_days: 5
    assert snapshots(client, auth, "va1demodb01") == []
    assert client.get("/_sim/state").json()["servers"]["va1demodb01"]["snapshots"] == []
    assert link(snapshot_now(client, auth, clock, "VA1DEMODB01"), "self").endswith("/snapshots/2")


FLEET = """
version: 1
data_centers: [{id: VA1}]
accounts: [{alias: DEMO, users: [{username: u, password: p}]}]
servers:
  - {name: VA1DEMOWEB01, account: DEMO, group: VA1, os: centOS6_64Bit, SERVER}
"""


@pytest.mark.parametrize(
    ("server", "problem"),
    [
        ("snapshot: {age: 24h, expiration_days: 1}", "servers[0].snapshot.age: a snapshot 86400 seconds old"),
        ("snapshot: {expiration_days: 11}", "servers[0].snapshot.expiration_days: 11 is out of range"),
        ("storage_gb: 2048, snapshot: {}", "servers[0].snapshot: servers with more than 1 TB"),
        ("is_template: true, snapshot: {}", "servers[0].snapshot: only active servers"),
        ("snapshot: {name: x}", "servers[0].snapshot.name: unknown field"),
    ],
)
def test_fleet_snapshot_errors_name_the_field(server, problem):
    import yaml

    doc = yaml.safe_load(textwrap.dedent(FLEET).replace("SERVER", server))
    with pytest.raises(FleetFileError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load_fleet_dict(doc, source="f.yaml")


def test_snapshot_timings_follow_the_time_scale(demo_fleet):
    wall = [0.0]
    clock = Clock(start=1_458_000_000.0, time_scale=0.001, wall=lambda: wall[0])
    sim = Simulator(demo_fleet, SimulatorSettings(time_scale=0.001), clock=clock)
    results, _ = sim.create_snapshot(ME, "DEMO", ["VA1DEMOWEB01"], 2)
    job = sim.jobs[results[0]["links"][0]["id"]]
    wall[0] += 0.121  # 121 simulated seconds
    sim.advance()
    assert job.status(sim.now()) == "executing" and sim.servers["va1demoweb01"].snapshots == []
    wall[0] += 0.002  # 2 + 120 s is 0.122 s of wall time at time_scale 0.001
    sim.advance()
    assert job.status(sim.now()) == "succeeded" and len(sim.servers["va1demoweb01"].snapshots) == 1


def test_patch_state_and_snapshots_survive_restarts(tmp_path, demo_fleet, clock):
    def start():
        return Simulator(
            demo_fleet, SimulatorSettings(seed=1, state_file=str(tmp_path / "s.json")), clock=clock
        )

    def state(sim, sid):
        sim.advance()
        sim.commit()  # as the next mutating request would: the applied events are saved
        return sim.state_view()["servers"][sid]["installedPatches"]

    def patch(sim, sid):
        sim.execute_package(ME, "DEMO", [sid], "c3c6642e-24e1-4c37-b56a-1cf1476ee360", {})
        clock.tick(PATCH_RUN)

    sim = start()
    owners = sim.servers["va1demodb01"].snapshots[0].created
    sim.create_snapshot(ME, "DEMO", ["VA1DEMOWEB01"], 4)  # web01: snapshot, then patches
    clock.tick(200)
    patch(sim, "VA1DEMOWEB01")
    patch(sim, "VA1DEMOWEB02")  # web02: patches, then snapshot
    sim.create_snapshot(ME, "DEMO", ["VA1DEMOWEB02"], 4)
    clock.tick(200)
    assert state(sim, "va1demoweb01") == state(sim, "va1demoweb02") == WEB01_PATCHES
    clock.tick(3600)  # the restarted process's clock has moved on
    again = start()
    assert again.servers["va1demodb01"].snapshots[0].created == owners
    assert again.servers["va1demoweb01"].snapshots == sim.servers["va1demoweb01"].snapshots
    assert again.servers["va1demoweb02"].snapshots == sim.servers["va1demoweb02"].snapshots
    assert state(again, "va1demoweb01") == WEB01_PATCHES
    for sid in ("va1demoweb01", "va1demoweb02"):
        again.snapshot_action(ME, "DEMO", sid, "1", "restore")
        clock.tick(100)
    assert state(again, "va1demoweb01") == [] and state(again, "va1demoweb02") == WEB01_PATCHES
    third = start()  # the rolled-back states are what the next process sees too
    assert state(third, "va1demoweb01") == [] and state(third, "va1demoweb02") == WEB01_PATCHES
