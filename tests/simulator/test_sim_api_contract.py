"""Contract tests per endpoint against the reference (docs/clc-api-v2.md), in process."""

from __future__ import annotations

import base64
import json
import re

import jwt
import pytest

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
NOT_FOUND = {"message": "The requested resource does not exist."}
CANNOT_QUEUE = (
    "The operation cannot be queued because the server cannot be found or it is not in a valid state."
)


def all_dates(obj, keys=("createdDate", "modifiedDate", "start_time", "end_time")):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in keys and v != "":
                yield v
            yield from all_dates(v, keys)
    elif isinstance(obj, list):
        for v in obj:
            yield from all_dates(v, keys)


# ------------------------------------------------------------------------------ login / tokens
def test_login_returns_documented_fields_and_real_jwt_claims(client):
    r = client.post("/v2/authentication/login", json={"username": "demo.admin", "password": "demo-password"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    assert set(body) == {"userName", "accountAlias", "locationAlias", "roles", "bearerToken"}
    assert (
        body["userName"] == "demo.admin" and body["accountAlias"] == "DEMO" and body["locationAlias"] == "VA1"
    )
    header = json.loads(base64.urlsafe_b64decode(body["bearerToken"].split(".")[0] + "=="))
    assert header == {"typ": "JWT", "alg": "HS256"} or header == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(body["bearerToken"], options={"verify_signature": False})
    assert claims["iss"] == "urn:api-tier3" and claims["aud"] == "urn:tier3-users"
    assert claims["exp"] - claims["nbf"] == 14 * 24 * 3600
    assert claims["unique_name"] == "demo.admin" and claims["urn:tier3:account-alias"] == "DEMO"
    assert claims["urn:tier3:location-alias"] == "VA1" and "AccountAdmin" in claims["role"]


def test_bad_login_is_400_with_the_documented_message(client):
    r = client.post("/v2/authentication/login", json={"username": "demo.admin", "password": "nope"})
    assert r.status_code == 400
    assert r.json() == {
        "message": "We didn't recognize the username or password you entered. Please try again."
    }


def test_login_body_keys_and_media_type_are_case_insensitive(client):
    r = client.post(
        "/v2/authentication/login",
        content=json.dumps({"UserName": "demo.admin", "PASSWORD": "demo-password"}),
        headers={"Content-Type": "Application/JSON; Charset=UTF-8"},
    )
    assert r.status_code == 200 and r.json()["accountAlias"] == "DEMO"


def test_non_json_media_type_is_415_and_broken_json_is_400_model_state(client):
    r = client.post("/v2/authentication/login", content="username=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "text/plain" in r.json()["message"]
    r = client.post("/v2/authentication/login", content="{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["message"] == "The request is invalid." and "request" in r.json()["modelState"]


@pytest.mark.parametrize("header", [None, "Bearer garbage", "Basic abc", "Bearer "])
def test_missing_or_bad_token_is_401(client, header):
    headers = {"Authorization": header} if header else {}
    r = client.get("/v2/datacenters/DEMO", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"message": "Authorization has been denied for this request."}


def test_token_expires_on_the_simulated_clock(client, clock, auth):
    assert client.get("/v2/datacenters/DEMO", headers=auth).status_code == 200
    clock.tick(14 * 24 * 3600 + 1)
    assert client.get("/v2/datacenters/DEMO", headers=auth).status_code == 401


# ------------------------------------------------------------------------------ access scoping
def test_aliases_reach_own_account_and_sub_accounts_only(client, auth, login_as):
    assert client.get("/v2/datacenters/demo", headers=auth).status_code == 200
    assert client.get("/v2/datacenters/DEMB", headers=auth).status_code == 200
    r = client.get("/v2/datacenters/OTHR", headers=auth)
    assert r.status_code == 403 and "OTHR" in r.json()["message"]
    assert client.get("/v2/servers/OTHR/va1othrweb01", headers=auth).status_code == 403
    assert client.get("/v2/datacenters/NOPE", headers=auth).status_code == 403
    sub = login_as("demb.admin", "demb-password")
    assert client.get("/v2/datacenters/DEMO", headers=sub).status_code == 403  # never upwards
    assert client.get("/v2/servers/DEMB/va1dembweb01", headers=sub).status_code == 200


def test_a_server_of_another_alias_is_not_found_under_my_alias(client, auth):
    # DEMB's server asked for under DEMO: 404, and a batch refuses it per server
    assert client.get("/v2/servers/DEMO/va1dembweb01", headers=auth).status_code == 404
    r = client.post("/v2/operations/DEMO/servers/startMaintenance", headers=auth, json=["VA1DEMBWEB01"])
    assert r.status_code == 400 and r.json() == [
        {"server": "va1dembweb01", "isQueued": False, "errorMessage": CANNOT_QUEUE}
    ]


def test_viewer_role_may_read_but_not_operate(client, login_as):
    viewer = login_as("demo.viewer", "viewer-password")
    assert client.get("/v2/servers/DEMO/va1demoweb01", headers=viewer).status_code == 200
    r = client.post("/v2/operations/DEMO/servers/startMaintenance", headers=viewer, json=["VA1DEMOWEB01"])
    assert r.status_code == 403 and r.json()["message"]


# ------------------------------------------------------------------------------ data centers
def test_datacenter_list_and_get_with_case_insensitive_group_links(client, auth, sim):
    r = client.get("/v2/datacenters/DEMO", headers=auth)
    assert r.status_code == 200
    assert [(d["id"], d["name"]) for d in r.json()] == [
        ("va1", "VA1 - US East (Sterling)"),
        ("uc1", "UC1 - US West (Santa Clara)"),
    ]
    assert r.json()[0]["links"] == [{"rel": "self", "href": "/v2/datacenters/demo/va1"}]
    for key in ("groupLinks", "GroupLinks", "GROUPLINKS"):
        r = client.get(f"/v2/datacenters/DEMO/VA1?{key}=true", headers=auth)
        group = [link for link in r.json()["links"] if link["rel"] == "group"]
        assert group and group[0]["name"] == "VA1 Hardware", key
        assert group[0]["href"] == f"/v2/groups/demo/{group[0]['id']}"
        assert re.fullmatch(r"[0-9a-f]{32}", group[0]["id"])
    r = client.get("/v2/datacenters/DEMO/VA1?groupLinks=false", headers=auth)
    assert [link["rel"] for link in r.json()["links"]] == ["self"]
    r = client.get("/v2/datacenters/DEMO/XX9", headers=auth)
    assert r.status_code == 404 and r.json() == NOT_FOUND


# ------------------------------------------------------------------------------ groups
def root_group(client, auth, dc="VA1", alias="DEMO"):
    r = client.get(f"/v2/datacenters/{alias}/{dc}?groupLinks=true", headers=auth)
    return next(link["id"] for link in r.json()["links"] if link["rel"] == "group")


def walk(group):
    yield group
    for child in group["groups"]:
        yield from walk(child)


def test_group_tree_is_recursive_with_recursive_servers_count(client, auth):
    r = client.get(f"/v2/groups/DEMO/{root_group(client, auth)}", headers=auth)
    assert r.status_code == 200
    root = r.json()
    assert root["name"] == "VA1 Hardware" and root["locationId"] == "VA1" and root["type"] == "default"
    assert "servers" not in root
    assert not any(link["rel"] == "parentGroup" for link in root["links"])
    assert next(link for link in root["links"] if link["rel"] == "self")["verbs"] == ["GET", "PATCH"]
    for g in walk(root):
        own = [link for link in g["links"] if link["rel"] == "server"]
        assert g["serversCount"] == len(own) + sum(c["serversCount"] for c in g["groups"])
        for link in own:
            assert link["id"] == link["id"].upper() and link["href"] == link["href"].lower()
        assert set(g) == {
            "id",
            "name",
            "description",
            "locationId",
            "type",
            "status",
            "serversCount",
            "groups",
            "links",
            "changeInfo",
            "customFields",
        }
    names = [g["name"] for g in walk(root)]
    assert {"Production", "Web", "Database", "Templates"} <= set(names)
    assert root["serversCount"] == 22
    assert all(ISO.match(d) for d in all_dates(root))


def test_server_detail_detailed_embeds_full_servers_at_every_level(client, auth):
    gid = root_group(client, auth)
    for key, value in (("serverDetail", "detailed"), ("SERVERDETAIL", "Detailed")):
        root = client.get(f"/v2/groups/DEMO/{gid}?{key}={value}", headers=auth).json()
        servers = [s for g in walk(root) for s in g["servers"]]
        assert len(servers) == 22
        web = next(g for g in walk(root) if g["name"] == "Web")
        assert {s["id"] for s in web["servers"]} >= {"va1demoweb01", "va1demowin01"}
        assert all(s["details"]["powerState"] in ("started", "stopped", "paused") for s in servers)


def test_unknown_or_foreign_group_is_404(client, auth):
    r = client.get("/v2/groups/DEMO/" + "0" * 32, headers=auth)
    assert r.status_code == 404 and r.json() == NOT_FOUND
    demb_root = root_group(client, auth, alias="DEMB")
    assert client.get(f"/v2/groups/DEMO/{demb_root}", headers=auth).status_code == 404
    assert client.get(f"/v2/groups/DEMB/{demb_root}", headers=auth).status_code == 200


# ------------------------------------------------------------------------------ servers
def test_get_server_shape_casing_and_dates(client, auth):
    r = client.get("/v2/servers/DEMO/VA1DEMOWEB01", headers=auth)
    assert r.status_code == 200
    s = r.json()
    assert s["id"] == "va1demoweb01" and s["name"] == "VA1DEMOWEB01"
    assert s["os"] == "centOS6_64Bit" and s["osType"] == "CentOS 6 64-bit"
    assert s["locationId"] == "VA1" and s["status"] == "active" and s["isTemplate"] is False
    assert s["type"] == "standard" and s["storageType"] == "standard"
    d = s["details"]
    assert d["powerState"] == "started" and d["inMaintenanceMode"] is False and d["snapshots"] == []
    assert d["ipAddresses"][1] == {"public": "64.94.114.241", "internal": d["ipAddresses"][0]["internal"]}
    rels = [link["rel"] for link in s["links"]]
    assert rels[:4] == ["self", "group", "account", "billing"] and len(rels) == 14
    assert s["links"][2] == {"rel": "account", "href": "/v2/accounts/demo", "id": "demo"}
    assert all(ISO.match(x) for x in all_dates(s))
    assert "displayName" not in s


def test_unknown_server_is_404_with_empty_body(client, auth):
    r = client.get("/v2/servers/DEMO/VA1DEMONOPE01", headers=auth)
    assert r.status_code == 404 and r.content == b""


def test_server_lookup_by_uuid_and_hostile_description_is_plain_json(client, auth, sim):
    uuid = sim.servers["va1demoweb02"].uuid
    r = client.get(f"/v2/servers/DEMO/{uuid}?UUID=true", headers=auth)
    assert r.status_code == 200 and r.json()["description"] == "<script>alert(1)</script>"
    assert (
        client.get("/v2/servers/DEMO/VA1DEMOWEB03", headers=auth).json()["description"] == '"quoted, comma"'
    )


def test_friendly_os_types_for_every_demo_os(client, auth, sim):
    for sid in (
        "va1demowin01",
        "va1demowin03",
        "va1demoweb04",
        "va1demoubu01",
        "va1democ701",
        "va1demow1601",
    ):
        s = client.get(f"/v2/servers/DEMO/{sid}", headers=auth).json()
        assert s["osType"].endswith("64-bit") and s["os"] == sim.servers[sid].os


# ------------------------------------------------------------------------------ batch operations
def test_power_operation_shape_one_job_per_request(client, auth, clock):
    r = client.post(
        "/v2/operations/DEMO/servers/powerOff", headers=auth, json=["VA1DEMOWEB01", "va1demoweb02"]
    )
    assert r.status_code == 200
    body = r.json()
    assert {e["server"] for e in body} == {"va1demoweb01", "va1demoweb02"}
    jobs = {e["links"][0]["id"] for e in body}
    assert len(jobs) == 1
    job = jobs.pop()
    assert re.fullmatch(r"va1-\d+", job)
    assert body[0]["links"] == [{"rel": "status", "href": f"/v2/operations/demo/status/{job}", "id": job}]
    assert set(body[0]) == {"server", "isQueued", "links"}
    status = lambda: client.get(f"/v2/operations/DEMO/status/{job}", headers=auth).json()  # noqa: E731
    assert status() == {"status": "notStarted"}
    clock.tick(5)
    assert status() == {"status": "executing"}
    clock.tick(60)
    assert status() == {"status": "succeeded"}
    assert (
        client.get("/v2/servers/DEMO/va1demoweb02", headers=auth).json()["details"]["powerState"] == "stopped"
    )


def test_noop_and_invalid_state_refusals(client, auth):
    r = client.post("/v2/operations/DEMO/servers/powerOn", headers=auth, json=["VA1DEMOWEB01"])
    assert r.status_code == 400 and r.json() == [{"server": "va1demoweb01", "isQueued": False}]
    r = client.post("/v2/operations/DEMO/servers/reboot", headers=auth, json=["VA1DEMOSTG02", "VA1DEMOTPL01"])
    assert r.status_code == 400
    assert all(e["errorMessage"] == CANNOT_QUEUE and e["isQueued"] is False for e in r.json())
    r = client.post("/v2/operations/DEMO/servers/reboot", headers=auth, json=["VA1DEMOWEB01", "VA1DEMOSTG02"])
    assert r.status_code == 200
    assert {e["server"]: e["isQueued"] for e in r.json()} == {"va1demoweb01": True, "va1demostg02": False}


@pytest.mark.parametrize("body", [[], {}, "VA1DEMOWEB01", [1], None])
def test_bad_batch_bodies_are_400_with_model_state(client, auth, body):
    r = client.post("/v2/operations/DEMO/servers/reboot", headers=auth, json=body)
    assert r.status_code == 400
    assert r.json()["message"] == "The request is invalid." and "serverIds" in r.json()["modelState"]


def test_maintenance_start_stop_and_set_accepts_strings(client, auth, clock):
    r = client.post("/v2/operations/DEMO/servers/startMaintenance", headers=auth, json=["VA1DEMOWEB01"])
    assert r.status_code == 200
    clock.tick(30)
    assert client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["inMaintenanceMode"]
    body = {
        "servers": [
            {"id": "VA1DEMOWEB01", "inMaintenanceMode": "false"},
            {"id": "va1demostg01", "inMaintenanceMode": False},
        ]
    }
    r = client.post("/v2/operations/DEMO/servers/setMaintenance", headers=auth, json=body)
    assert r.status_code == 200 and all(e["isQueued"] for e in r.json())
    clock.tick(30)
    for sid in ("va1demoweb01", "va1demostg01"):
        assert (
            client.get(f"/v2/servers/DEMO/{sid}", headers=auth).json()["details"]["inMaintenanceMode"]
            is False
        )
    r = client.post(
        "/v2/operations/DEMO/servers/setMaintenance",
        headers=auth,
        json={"servers": [{"id": "x", "inMaintenanceMode": "maybe"}]},
    )
    assert r.status_code == 400 and "servers[0].inMaintenanceMode" in r.json()["modelState"]


def test_unknown_job_is_404_and_jobs_are_scoped_to_alias(client, auth):
    r = client.get("/v2/operations/DEMO/status/va1-1", headers=auth)
    assert r.status_code == 404 and r.json() == NOT_FOUND
    job = client.post("/v2/operations/DEMO/servers/reboot", headers=auth, json=["VA1DEMOWEB01"]).json()[0]
    job_id = job["links"][0]["id"]
    assert client.get(f"/v2/operations/DEMB/status/{job_id}", headers=auth).status_code == 404
    assert client.get(f"/v2/operations/demo/status/{job_id.upper()}", headers=auth).status_code == 200


def test_batch_response_order_may_differ_when_shuffling(client, auth, sim):
    sim.settings.shuffle_batch_order = True
    ids = ["VA1DEMOWEB01", "VA1DEMOWEB02", "VA1DEMOWEB03", "VA1DEMOWEB04", "VA1DEMODB01", "VA1DEMODB02"]
    r = client.post("/v2/operations/DEMO/servers/startMaintenance", headers=auth, json=ids)
    assert r.status_code == 200
    got = [e["server"] for e in r.json()]
    assert sorted(got) == sorted(i.lower() for i in ids) and got != [i.lower() for i in ids]


# ------------------------------------------------------------------------------ snapshots
def test_snapshot_create_revert_delete(client, auth, clock):
    bad = client.post(
        "/v2/operations/DEMO/servers/createSnapshot",
        headers=auth,
        json={"snapshotExpirationDays": 11, "serverIds": ["VA1DEMOWEB01"]},
    )
    assert bad.status_code == 400 and "snapshotExpirationDays" in bad.json()["modelState"]
    r = client.post(
        "/v2/operations/DEMO/servers/createSnapshot",
        headers=auth,
        json={"snapshotExpirationDays": "7", "serverIds": ["VA1DEMOWEB01", "UC1DEMOBIG01"]},
    )
    assert r.status_code == 200
    by = {e["server"]: e for e in r.json()}
    assert by["va1demoweb01"]["isQueued"] and by["uc1demobig01"]["isQueued"] is False
    again = client.post(
        "/v2/operations/DEMO/servers/createSnapshot",
        headers=auth,
        json={"snapshotExpirationDays": 7, "serverIds": ["VA1DEMOWEB01"]},
    )
    assert again.status_code == 400 and again.json()[0]["errorMessage"] == "Server already has a snapshot."
    clock.tick(200)
    snaps = client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["snapshots"]
    assert len(snaps) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\d\.\d\d:\d\d:\d\d", snaps[0]["name"])
    assert [link["rel"] for link in snaps[0]["links"]] == ["self", "delete", "restore"]
    href = snaps[0]["links"][0]["href"]
    assert href == "/v2/servers/demo/va1demoweb01/snapshots/1"
    r = client.post(href + "/restore", headers=auth, json={})
    assert r.status_code == 200 and r.json()["rel"] == "status" and set(r.json()) == {"rel", "href", "id"}
    clock.tick(100)
    assert len(client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["snapshots"]) == 1
    assert client.delete("/v2/servers/DEMO/va1demoweb01/snapshots/9", headers=auth).status_code == 404
    r = client.delete(href, headers=auth)
    assert r.status_code == 200 and r.json()["href"].startswith("/v2/operations/demo/status/")
    clock.tick(100)
    assert client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["snapshots"] == []


def test_snapshot_expires_after_its_days(client, auth, clock):
    client.post(
        "/v2/operations/DEMO/servers/createSnapshot",
        headers=auth,
        json={"snapshotExpirationDays": 1, "serverIds": ["VA1DEMOWEB01"]},
    )
    clock.tick(300)
    assert len(client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["snapshots"]) == 1
    clock.tick(86400)
    assert client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["snapshots"] == []


def test_new_snapshot_queued_behind_the_deletion_of_the_old_one(client, auth, clock):
    """The SDK's CreateSnapshot(delete_existing=True) deletes the old snapshot and asks for
    the new one without waiting: the platform queues both, in that order."""
    body = {"snapshotExpirationDays": 3, "serverIds": ["VA1DEMOWEB01"]}
    client.post("/v2/operations/DEMO/servers/createSnapshot", headers=auth, json=body)
    clock.tick(200)
    (old,) = client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["snapshots"]
    delete = next(link["href"] for link in old["links"] if link["rel"] == "delete")
    assert client.delete(delete, headers=auth).status_code == 200
    r = client.post("/v2/operations/DEMO/servers/createSnapshot", headers=auth, json=body)
    assert r.status_code == 200 and r.json()[0]["isQueued"] is True
    again = client.post("/v2/operations/DEMO/servers/createSnapshot", headers=auth, json=body)
    assert again.status_code == 400 and again.json()[0]["errorMessage"] == "Server already has a snapshot."
    clock.tick(200)
    (new,) = client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["snapshots"]
    assert new["links"][0]["href"].endswith("/snapshots/2")


# ------------------------------------------------------------------------------ packages, routing
def test_get_packages_lists_the_patch_packages(client, auth):
    r = client.get("/v2/packages/DEMO", headers=auth)
    assert r.status_code == 200
    ids = {p["id"]: p for p in r.json()}
    linux = ids["c3c6642e-24e1-4c37-b56a-1cf1476ee360"]
    assert "redHat7_64Bit" in linux["supportedOSTypes"] and "centOS7_64Bit" not in linux["supportedOSTypes"]
    assert set(linux) == {"id", "name", "description", "visibility", "parameters", "supportedOSTypes"}
    assert linux["parameters"][0]["variable"] == "patch.debug.mode"
    assert ids["b229535c-a313-4a31-baf8-6aa71ff4b9ed"]["supportedOSTypes"] == [
        "windows2012DataCenter_64Bit",
        "windows2012R2DataCenter_64Bit",
    ]


def test_unknown_route_and_wrong_method(client, auth):
    r = client.get("/v2/nothing/here", headers=auth)
    assert r.status_code == 404 and r.json() == NOT_FOUND
    r = client.put("/v2/authentication/login", json={})
    assert r.status_code == 405 and "PUT" in r.json()["message"]


def test_real_api_cache_headers(client, auth):
    r = client.get("/v2/servers/DEMO/va1demoweb01", headers=auth)
    assert r.headers["cache-control"] == "no-cache" and r.headers["expires"] == "-1"
