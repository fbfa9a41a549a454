"""Every call's path, root and kind in one place; data in a path is always one quoted segment."""

from __future__ import annotations

import pytest

from include.clc import endpoints
from include.clc.endpoints import Api, CallKind
from include.clc.settings import ClcSettings

SETTINGS = ClcSettings("http://h:1/v2", "http://h:1/patching/rest", "user", "pw-secret-1")


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("va1demoweb01", "va1demoweb01"),
        ("a/b", "a%2Fb"),
        ("../../authentication/login", "..%2F..%2Fauthentication%2Flogin"),
        ("x?y=1#z", "x%3Fy%3D1%23z"),
        ("with space", "with%20space"),
        ("ümlaut", "%C3%BCmlaut"),
    ],
)
def test_a_path_segment_is_quoted_so_data_cannot_reach_another_endpoint(value, quoted):
    assert endpoints.segment(value) == quoted
    call = endpoints.patch_detail("DEMO", value, value)
    assert call.path == f"servers/DEMO/server/{quoted}/patch/{quoted}"


@pytest.mark.parametrize(
    ("call", "method", "api", "path", "kind"),
    [
        (endpoints.login("u", "p"), "POST", Api.V2, "authentication/login", CallKind.LOGIN),
        (endpoints.datacenters("DEMO"), "GET", Api.V2, "datacenters/DEMO", CallKind.READ),
        (
            endpoints.datacenter("DEMO", "va1", group_links=True),
            "GET",
            Api.V2,
            "datacenters/DEMO/va1",
            CallKind.READ,
        ),
        (endpoints.group("DEMO", "g-1", detailed=True), "GET", Api.V2, "groups/DEMO/g-1", CallKind.READ),
        (endpoints.server("DEMO", "s1"), "GET", Api.V2, "servers/DEMO/s1", CallKind.READ),
        (
            endpoints.start_maintenance("DEMO", ["s1"]),
            "POST",
            Api.V2,
            "operations/DEMO/servers/startMaintenance",
            CallKind.BATCH,
        ),
        (
            endpoints.stop_maintenance("DEMO", ["s1"]),
            "POST",
            Api.V2,
            "operations/DEMO/servers/stopMaintenance",
            CallKind.BATCH,
        ),
        (
            endpoints.execute_package("DEMO", ["s1"], "pkg"),
            "POST",
            Api.V2,
            "operations/DEMO/servers/executePackage",
            CallKind.SUBMIT,
        ),
        (
            endpoints.queue_status("DEMO", "va1-1"),
            "GET",
            Api.V2,
            "operations/DEMO/status/va1-1",
            CallKind.READ,
        ),
        (
            endpoints.patch_summary("DEMO", "s1"),
            "GET",
            Api.PATCHING,
            "servers/DEMO/server/s1/patch",
            CallKind.READ,
        ),
    ],
)
def test_each_call_names_its_method_root_path_and_kind(call, method, api, path, kind):
    assert (call.method, call.api, call.path, call.kind) == (method, api, path, kind)


def test_query_parameters_and_bodies():
    assert endpoints.datacenter("D", "va1", group_links=False).params == {"groupLinks": "false"}
    assert endpoints.group("D", "g", detailed=True).params == {"serverDetail": "detailed"}
    assert endpoints.group("D", "g", detailed=False).params is None
    assert endpoints.start_maintenance("D", iter(["a", "b"])).body == ["a", "b"]
    assert endpoints.execute_package("D", ["a"], "pkg", {"k": "v"}).body == {
        "servers": ["a"],
        "package": {"packageId": "pkg", "parameters": {"k": "v"}},
    }
    assert endpoints.execute_package("D", ["a"], "pkg").body["package"]["parameters"] == {}


def test_the_login_call_never_shows_its_password():
    call = endpoints.login("user", "pw-secret-1")
    assert call.body == {"username": "user", "password": "pw-secret-1"}
    assert "pw-secret-1" not in repr(call)
    assert "pw-secret-1" not in repr(SETTINGS)


def test_urls_join_the_connection_roots():
    assert SETTINGS.url(Api.V2, "servers/DEMO/s1") == "http://h:1/v2/servers/DEMO/s1"
    assert SETTINGS.url(Api.PATCHING, "servers/DEMO/server/s1/patch") == (
        "http://h:1/patching/rest/servers/DEMO/server/s1/patch"
    )
