"""Reference §12 #33 and #35: form-encoded and JSON bodies (any media-type case) on every
endpoint that takes a body, 415 only for other media types; ``GET /v2/accounts/{alias}``;
the ``Date`` header on the simulated clock."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

import pytest

from simulator.form_body import decode_form

LINUX_PKG = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def post_form(client, path, fields, auth=None, content_type="application/x-www-form-urlencoded"):
    headers = {**(auth or {}), "Content-Type": content_type}
    body = fields if isinstance(fields, str) else urlencode(fields, doseq=True)
    return client.post(path, content=body, headers=headers)


def queued(r) -> dict[str, bool]:
    return {e["server"]: e["isQueued"] for e in r.json()}


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (
            b"serverIds=A&serverIds=B&snapshotExpirationDays=3",
            {"serverIds": ["A", "B"], "snapshotExpirationDays": "3"},
        ),
        (b"=A&=B", ["A", "B"]),
        (b"[]=A&[]=B", ["A", "B"]),
        (b"[1]=B&[0]=A", ["A", "B"]),
        (b"serverIds[]=A", {"serverIds": ["A"]}),
        (
            b"servers[0][id]=A&servers[0][inMaintenanceMode]=true&servers[1].id=B",
            {"servers": [{"id": "A", "inMaintenanceMode": "true"}, {"id": "B"}]},
        ),
        (
            b"servers=A&package[packageId]=p&package[parameters][patch.debug.mode]=false",
            {"servers": "A", "package": {"packageId": "p", "parameters": {"patch.debug.mode": "false"}}},
        ),
        (b"password=p%26q%3D+x", {"password": "p&q= x"}),
        (b"", None),
    ],
)
def test_form_decoding_follows_web_api_conventions(raw, decoded):
    assert decode_form(raw) == decoded


def test_login_with_a_form_body_as_the_sdk_get_session_sends_it(client):
    r = post_form(client, "/v2/authentication/login", {"username": "demo.admin", "password": "demo-password"})
    assert r.status_code == 200 and r.json()["accountAlias"] == "DEMO"
    r = post_form(client, "/v2/authentication/login", {"username": "demo.admin", "password": "wrong"})
    assert r.status_code == 400 and "username or password" in r.json()["message"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
        "Application/X-WWW-Form-Urlencoded",
    ],
)
def test_create_snapshot_with_the_sdk_form_body(client, auth, content_type):
    fields = {"serverIds": "VA1DEMOWEB01", "snapshotExpirationDays": 7}
    r = post_form(client, "/v2/operations/DEMO/servers/createSnapshot", fields, auth, content_type)
    assert r.status_code == 200 and queued(r) == {"va1demoweb01": True}


def test_create_snapshot_form_with_repeated_ids(client, auth):
    fields = "serverIds=VA1DEMOWEB01&serverIds=VA1DEMOWEB02&snapshotExpirationDays=3"
    r = post_form(client, "/v2/operations/DEMO/servers/createSnapshot", fields, auth)
    assert r.status_code == 200 and queued(r) == {"va1demoweb01": True, "va1demoweb02": True}
    r = post_form(
        client,
        "/v2/operations/DEMO/servers/createSnapshot",
        "serverIds=VA1DEMOWEB03&snapshotExpirationDays=11",
        auth,
    )
    assert r.status_code == 400 and "snapshotExpirationDays" in r.json()["modelState"]


@pytest.mark.parametrize(
    "body",
    [
        "=VA1DEMOWEB01&=VA1DEMOWEB02",
        "[]=VA1DEMOWEB01&[]=VA1DEMOWEB02",
        "serverIds=VA1DEMOWEB01&serverIds=VA1DEMOWEB02",
        "ids[0]=VA1DEMOWEB01&ids[1]=VA1DEMOWEB02",
    ],
)
@pytest.mark.parametrize("op", ["startMaintenance", "powerOff"])
def test_array_bodied_operations_take_form_bodies(client, auth, op, body):
    r = post_form(client, f"/v2/operations/DEMO/servers/{op}", body, auth)
    assert r.status_code == 200 and queued(r) == {"va1demoweb01": True, "va1demoweb02": True}


def test_array_bodied_operation_with_an_unknown_form_field_is_model_state(client, auth):
    r = post_form(client, "/v2/operations/DEMO/servers/startMaintenance", "hosts=VA1DEMOWEB01", auth)
    assert r.status_code == 400 and "serverIds" in r.json()["modelState"]


def test_set_maintenance_with_a_form_body(client, auth):
    body = (
        "servers[0][id]=VA1DEMOWEB01&servers[0][inMaintenanceMode]=true"
        "&servers[1].id=VA1DEMOWEB02&servers[1].inMaintenanceMode=true"
    )
    r = post_form(client, "/v2/operations/DEMO/servers/setMaintenance", body, auth)
    assert r.status_code == 200 and queued(r) == {"va1demoweb01": True, "va1demoweb02": True}
    r = post_form(
        client,
        "/v2/operations/DEMO/servers/setMaintenance",
        "servers[id]=VA1DEMOWEB03&servers[inMaintenanceMode]=true",
        auth,
    )
    assert r.status_code == 200 and queued(r) == {"va1demoweb03": True}


def test_execute_package_with_a_form_body(client, auth):
    body = f"servers=VA1DEMOWEB01&package[packageId]={LINUX_PKG}&package[parameters][patch.debug.mode]=false"
    r = post_form(client, "/v2/operations/DEMO/servers/executePackage", body, auth)
    assert r.status_code == 200 and queued(r) == {"va1demoweb01": True}
    body = f"servers[]=VA1DEMOWEB02&package.packageId={LINUX_PKG}"  # no parameters: a form cannot spell {}
    r = post_form(client, "/v2/operations/DEMO/servers/executePackage", body, auth)
    assert r.status_code == 200 and queued(r) == {"va1demoweb02": True}
    assert client.get("/_sim/counters").json()["executions_per_server"] == {
        "va1demoweb01": 1,
        "va1demoweb02": 1,
    }


def test_restore_snapshot_with_the_sdk_empty_form_body(client, auth, clock):
    post_form(
        client,
        "/v2/operations/DEMO/servers/createSnapshot",
        {"serverIds": "VA1DEMOWEB01", "snapshotExpirationDays": 2},
        auth,
    )
    clock.tick(300)
    (snap,) = client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()["details"]["snapshots"]
    restore = next(link["href"] for link in snap["links"] if link["rel"] == "restore")
    r = client.post(restore, content=b"", headers={**auth, **FORM})
    assert r.status_code == 200 and r.json()["rel"] == "status"


@pytest.mark.parametrize(
    "content_type", ["Application/json", "APPLICATION/JSON; charset=utf-8", "application/json;charset=UTF-8"]
)
def test_json_in_any_case_with_or_without_charset(client, auth, content_type):
    r = client.post(
        "/v2/operations/DEMO/servers/startMaintenance",
        content='["VA1DEMOWEB01"]',
        headers={**auth, "Content-Type": content_type},
    )
    assert r.status_code == 200 and queued(r) == {"va1demoweb01": True}


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", "application/xml"])
def test_other_media_types_are_415(client, auth, content_type):
    r = client.post(
        "/v2/operations/DEMO/servers/startMaintenance",
        content="serverIds=VA1DEMOWEB01",
        headers={**auth, "Content-Type": content_type},
    )
    assert r.status_code == 415 and content_type.split(";")[0] in r.json()["message"]


# ------------------------------------------------------------------------------ accounts
def test_get_account_serves_what_the_sdk_account_reads(client, auth):
    r = client.get("/v2/accounts/demo", headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert body["accountAlias"] == "DEMO" and body["parentAlias"] is None
    assert body["businessName"] == "Demo Corporation" and body["primaryDataCenter"] == "VA1"
    assert body["status"] == "active" and body["isManaged"] is False
    for key in (
        "addressLine1",
        "addressLine2",
        "city",
        "stateProvince",
        "postalCode",
        "country",
        "telephone",
    ):
        assert body[key] == ""
    sub = client.get("/v2/accounts/DEMB", headers=auth).json()
    assert sub["parentAlias"] == "DEMO"
    assert {"rel": "parentAccount", "href": "/v2/accounts/demo"} in sub["links"]


def test_account_link_of_a_server_resolves(client, auth):
    server = client.get("/v2/servers/DEMO/va1demoweb01", headers=auth).json()
    href = next(link["href"] for link in server["links"] if link["rel"] == "account")
    assert client.get(href, headers=auth).json()["accountAlias"] == "DEMO"


def test_account_out_of_reach_or_without_token(client, auth, login_as):
    assert client.get("/v2/accounts/OTHR", headers=auth).status_code == 403
    assert client.get("/v2/accounts/DEMO").status_code == 401
    assert client.get("/v2/accounts/DEMO", headers=login_as("demb.admin", "demb-password")).status_code == 403


# ------------------------------------------------------------------------------ Date header
def test_date_header_follows_the_simulated_clock(client, auth, clock):
    date = parsedate_to_datetime(client.get("/v2/datacenters/DEMO", headers=auth).headers["date"])
    assert date.timestamp() == clock.now()  # 2016, not the wall clock
    clock.tick(3600)
    date = parsedate_to_datetime(client.get("/_sim/health").headers["date"])
    assert date.timestamp() == clock.now()


#: a form body for every CLC route that changes something, each queueing real work
FORM_BODIES = {
    ("POST", "/v2/authentication/login"): "username=demo.admin&password=demo-password",
    ("POST", "/v2/operations/{alias}/servers/powerOn"): "=UC1DEMOOFF01",
    ("POST", "/v2/operations/{alias}/servers/powerOff"): "=VA1DEMOWEB01",
    ("POST", "/v2/operations/{alias}/servers/shutDown"): "[]=VA1DEMOWEB02",
    ("POST", "/v2/operations/{alias}/servers/reboot"): "serverIds=VA1DEMOWEB03",
    ("POST", "/v2/operations/{alias}/servers/reset"): "[0]=VA1DEMOWEB04",
    ("POST", "/v2/operations/{alias}/servers/pause"): "ids=VA1DEMOWIN01",
    ("POST", "/v2/operations/{alias}/servers/startMaintenance"): "=VA1DEMOWIN02",
    ("POST", "/v2/operations/{alias}/servers/stopMaintenance"): "=VA1DEMOSTG01",
    ("POST", "/v2/operations/{alias}/servers/setMaintenance"): (
        "servers[0][id]=VA1DEMOWIN03&servers[0][inMaintenanceMode]=true"
    ),
    ("POST", "/v2/operations/{alias}/servers/executePackage"): (
        f"servers=UC1DEMOAPP01&package[packageId]={LINUX_PKG}"
    ),
    (
        "POST",
        "/v2/operations/{alias}/servers/createSnapshot",
    ): "serverIds=UC1DEMOAPP02&snapshotExpirationDays=7",
    # the demo fleet's VA1DEMODB01 has its owner's snapshot 1; the SDK sends an empty form
    ("POST", "/v2/servers/{alias}/{serverId}/snapshots/{snapshotId}/restore"): "",
    ("DELETE", "/v2/servers/{alias}/{serverId}/snapshots/{snapshotId}"): "",
}


def test_every_clc_route_that_takes_a_body_accepts_the_form_real_clients_send(client, auth):
    """Reference §12 #33, route by route from the app itself: a new operation endpoint
    without form support, or missing from this table, fails here."""
    routes = {
        (method, route.path)
        for route in client.app.routes
        for method in getattr(route, "methods", ())
        if method in ("POST", "PUT", "PATCH", "DELETE") and route.path.startswith("/v2/")
    }
    assert routes == set(FORM_BODIES)
    for (method, path), body in FORM_BODIES.items():
        url = path.format(alias="DEMO", serverId="VA1DEMODB01", snapshotId="1")
        r = client.request(method, url, content=body, headers={**auth, **FORM})
        assert r.status_code == 200, (path, r.status_code, r.text)
        answer = r.json()
        if isinstance(answer, list):  # a batch operation: the one server was queued
            assert [e["isQueued"] for e in answer] == [True], (path, answer)
        else:  # login, or the single status link of a snapshot restore/delete
            assert "bearerToken" in answer or answer["rel"] == "status", (path, answer)
