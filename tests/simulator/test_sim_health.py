"""The simulator's health model: custom fields as the API shows them, each server's own health
endpoint, a fleet's ``unhealthy_after_patch`` servers and the fault of that name."""

from __future__ import annotations

import pytest

from simulator.fleet_file import FleetFileError, load_fleet_dict
from tests.simulator.conftest import LINUX_PKG, execute

PATCH_RUN = 3600  # simulated seconds: more than an EL6 server's whole patch run takes


def server(client, auth, sid):
    return client.get(f"/v2/servers/DEMO/{sid}", headers=auth).json()


def health(client, sid):
    return client.get(f"/health/{sid}")


def test_custom_fields_have_the_api_shape_and_the_health_url_names_this_simulator(client, auth):
    fields = server(client, auth, "va1demoweb01")["details"]["customFields"]
    by_name = {f["name"]: f for f in fields}
    assert set(by_name) == {"cluster", "healthUrl"}
    for item in fields:
        assert set(item) == {"id", "name", "value", "displayValue"}
        assert item["value"] == item["displayValue"] and len(item["id"]) == 32
    assert by_name["cluster"]["value"] == "va1-web"
    assert by_name["healthUrl"]["value"] == "http://testserver/health/va1demoweb01"
    group = client.get(
        f"/v2/groups/DEMO/{server(client, auth, 'va1demoweb01')['groupId']}?serverDetail=detailed"
    )
    assert group.status_code == 401  # the group read needs a token; the URL is the same there:
    root = client.get(
        f"/v2/groups/DEMO/{server(client, auth, 'va1demoweb01')['groupId']}?serverDetail=detailed",
        headers=auth,
    ).json()
    assert "{simulator}" not in str(root) and "http://testserver/health/va1demoweb01" in str(root)


def test_a_healthy_server_answers_200_and_an_unknown_one_404(client):
    assert health(client, "va1demoweb01").status_code == 200
    assert health(client, "va1demoweb01").json()["status"] == "healthy"
    assert health(client, "nosuch01").status_code == 404


def test_a_stopped_server_is_unhealthy(client):
    r = health(client, "uc1demooff01")
    assert r.status_code == 503 and r.json()["reason"] == "server is stopped"


def test_an_unhealthy_after_patch_server_turns_503_only_once_its_execution_completed(
    client, auth, sim, clock
):
    assert health(client, "uc1demoapp03").status_code == 200
    assert execute(client, auth, ["uc1demoapp03"], LINUX_PKG).status_code == 200
    clock.advance(20)
    assert health(client, "uc1demoapp03").status_code == 200  # patching, not completed yet
    clock.advance(PATCH_RUN)
    r = health(client, "uc1demoapp03")
    assert r.status_code == 503 and "completed" in r.json()["reason"]
    assert server(client, auth, "uc1demoapp03")["details"]["powerState"] == "started"  # only the service


def test_the_fault_breaks_the_health_of_the_named_server_after_its_next_patch(client, auth, clock):
    r = client.post("/_sim/faults", json={"kind": "unhealthy_after_patch", "server": "va1demoweb01"})
    assert r.status_code == 201, r.text
    execute(client, auth, ["va1demoweb01", "va1demoweb02"], LINUX_PKG)
    clock.advance(PATCH_RUN)
    assert health(client, "va1demoweb01").status_code == 503
    assert health(client, "va1demoweb02").status_code == 200


def test_the_fault_needs_a_server(client):
    r = client.post("/_sim/faults", json={"kind": "unhealthy_after_patch"})
    assert r.status_code == 400 and "server" in r.text


def test_http_faults_never_hit_the_health_endpoint(client):
    client.post("/_sim/faults", json={"kind": "error", "status": 500})
    assert health(client, "va1demoweb01").status_code == 200


MINIMAL = {
    "version": 1,
    "data_centers": [{"id": "VA1"}],
    "accounts": [{"alias": "DEMO", "name": "D", "primary_data_center": "VA1", "users": []}],
    "servers": [{"name": "VA1DEMOA01", "account": "DEMO", "group": "VA1", "os": "centOS6_64Bit"}],
}


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ([1, 2], "custom_fields"),
        ({"cluster": [1]}, "custom_fields.cluster"),
        ({"": "x"}, "custom field name"),
    ],
)
def test_bad_custom_fields_are_named(fields, problem):
    doc = {**MINIMAL, "servers": [{**MINIMAL["servers"][0], "custom_fields": fields}]}
    with pytest.raises(FleetFileError, match=problem):
        load_fleet_dict(doc)


def test_a_fleet_health_url_field_gives_every_server_its_url_unless_it_has_its_own():
    doc = {**MINIMAL, "health_url_field": "hc"}
    doc["servers"] = [
        MINIMAL["servers"][0],
        {**MINIMAL["servers"][0], "name": "VA1DEMOA02", "custom_fields": {"hc": "http://elsewhere/x"}},
    ]
    fleet = load_fleet_dict(doc)
    assert [s.custom_fields for s in fleet.servers] == [
        {"hc": "{simulator}/health/va1demoa01"},
        {"hc": "http://elsewhere/x"},
    ]
