"""The classification table over every OS code and friendly name in the CLC API reference."""

from __future__ import annotations

import pytest

from include.patching.classification import Scope, classify, os_family, package_for_os
from include.patching.states import ServerState

# Every `os` code in clc-api-v2.md §5.4 (Get Server, templates, bare metal, import types) and
# the codes the simulator invents for OSes the sources never showed.
SUPPORTED = {
    "centOS5_64Bit": "linux_yum",
    "centOS6_64Bit": "linux_yum",
    "redHat5_64Bit": "linux_yum",
    "redHat6_64Bit": "linux_yum",
    "redHat7_64Bit": "linux_yum",
    "RedHat6_64Bit": "linux_yum",
    "REDHAT6_64BIT": "linux_yum",
    "windows2012DataCenter_64Bit": "windows_2012",
    "windows2012R2DataCenter_64Bit": "windows_2012",
    "windows2012R2Standard_64Bit": "windows_2012",
    "windows2012R2Datacenter_64Bit": "windows_2012",
    "Windows2012R2DataCenter_64Bit": "windows_2012",
    "windows2012r2datacenter_64bit": "windows_2012",
}
UNSUPPORTED = [
    "debian6_64Bit",
    "debian7_64Bit",
    "ubuntu12_64Bit",
    "ubuntu14_64Bit",
    "ubuntu_64Bit",
    "pxeBoot",
    "windows2008_64bit",
    "windows2008_64Bit",
    "windows2008R2Standard_64bit",
    "windows2008Enterprise_64Bit",
    "windows2008R2Enterprise_64bit",
    "windows2008DataCenter_64Bit",
    "windows2008R2DataCenter_64bit",
    "Windows2008R2DataCenter_64bit",
    "centOS7_64Bit",
    "windows2016DataCenter_64Bit",
    "",
]
FRIENDLY = {
    "CentOS 5 64-bit": "linux_yum",
    "CentOS 6 64-bit": "linux_yum",
    "RedHat Enterprise Linux 5 64-bit": "linux_yum",
    "RedHat Enterprise Linux 6 64-bit": "linux_yum",
    "RedHat Enterprise Linux 7 64-bit": "linux_yum",
    "Windows 2012 Datacenter 64-bit": "windows_2012",
    "Windows 2012 R2 Datacenter 64-bit": "windows_2012",
    "windows 2012 r2 datacenter edition 64-bit": "windows_2012",
    "Debian 7 64-bit": None,
    "Windows 2008 64-bit": None,
    "Ubuntu 14 64-bit": None,
    "CentOS 7 64-bit": None,
    "Windows 2016 Datacenter 64-bit": None,
}


@pytest.mark.parametrize(("code", "key"), sorted(SUPPORTED.items()))
def test_supported_codes_map_to_their_package(code, key):
    assert package_for_os(code) == key


@pytest.mark.parametrize("code", UNSUPPORTED)
def test_unsupported_codes_have_no_package(code):
    assert package_for_os(code) is None


@pytest.mark.parametrize(("name", "key"), sorted(FRIENDLY.items()))
def test_friendly_names_are_classified_too(name, key):
    assert package_for_os(None, name) == key


def test_code_wins_over_a_contradicting_friendly_name():
    assert package_for_os("debian7_64Bit", "Debian 7 64-bit") is None
    assert package_for_os("redHat6_64Bit", "something odd") == "linux_yum"


@pytest.mark.parametrize(
    ("code", "family"),
    [
        ("centOS6_64Bit", "linux"),
        ("ubuntu14_64Bit", "linux"),
        ("windows2008_64bit", "windows"),
        ("pxeBoot", "other"),
    ],
)
def test_os_family(code, family):
    assert os_family(code) == family


def server(**over):
    base = {
        "id": "va1demoweb01",
        "os": "centOS6_64Bit",
        "osType": "CentOS 6 64-bit",
        "status": "active",
        "isTemplate": False,
        "data_center": "VA1",
        "group_id": "a" * 32,
        "group_name": "Web",
        "group_path_ids": ["f" * 32, "a" * 32],
        "group_path_names": ["VA1 Hardware", "Web"],
        "details": {"powerState": "started", "inMaintenanceMode": False},
    }
    base.update(over)
    return base


def test_a_running_supported_server_is_planned_for_its_package():
    plan = classify(server())
    assert (plan.package_key, plan.state) == ("linux_yum", None)
    assert plan.package.package_id == "c3c6642e-24e1-4c37-b56a-1cf1476ee360"


@pytest.mark.parametrize(
    ("over", "state", "reason_part"),
    [
        ({"isTemplate": True}, ServerState.SKIPPED_TEMPLATE, "template"),
        ({"status": "archived"}, ServerState.SKIPPED_NOT_ACTIVE, "archived"),
        ({"details": {"powerState": "stopped"}}, ServerState.SKIPPED_NOT_RUNNING, "stopped"),
        ({"details": {"powerState": "paused"}}, ServerState.SKIPPED_NOT_RUNNING, "paused"),
        (
            {"os": "ubuntu14_64Bit", "osType": "Ubuntu 14 64-bit"},
            ServerState.SKIPPED_UNSUPPORTED_OS,
            "Ubuntu",
        ),
    ],
)
def test_skips_carry_state_and_reason(over, state, reason_part):
    plan = classify(server(**over))
    assert plan.state is state and plan.package_key is None
    assert reason_part in plan.reason


def test_a_stopped_server_with_unsupported_os_is_reported_as_not_running():
    plan = classify(server(os="ubuntu14_64Bit", details={"powerState": "stopped"}))
    assert plan.state is ServerState.SKIPPED_NOT_RUNNING


def test_dry_run_plans_without_attempting():
    plan = classify(server(), dry_run=True)
    assert plan.state is ServerState.PLANNED_DRY_RUN and plan.package_key == "linux_yum"
    assert classify(server(os="pxeBoot", osType=""), dry_run=True).state is ServerState.SKIPPED_UNSUPPORTED_OS


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (Scope.build(deny=["VA1DEMOWEB01"]), "deny-list"),
        (Scope.build(allow=["va1demoweb02"]), "allow-list"),
        (Scope.build(data_centers=["uc1"]), "data center VA1"),
        (Scope.build(groups=["Database"]), "group not selected"),
        (Scope.build(groups=["b" * 32]), "group not selected"),
    ],
)
def test_scope_filters_skip_with_the_reason(scope, expected):
    plan = classify(server(), scope)
    assert plan.state is ServerState.SKIPPED_FILTERED
    assert expected in plan.reason


@pytest.mark.parametrize(
    "scope",
    [
        Scope.build(allow=["VA1DEMOWEB01"]),
        Scope.build(data_centers=["va1"]),
        Scope.build(groups=["web"]),
        Scope.build(groups=["va1 hardware"]),
        Scope.build(groups=["A" * 32]),
    ],
)
def test_scope_filters_keep_matching_servers(scope):
    assert classify(server(), scope).state is None


FINANCE, FIN_PROD, PROD, DEEP = "1" * 32, "2" * 32, "3" * 32, "4" * 32


def placed(*lineage: tuple[str, str]) -> dict:
    """A server whose group lineage (root first) is ``lineage``; also the old slash-joined path."""
    ids, names = [i for i, _ in lineage], [n for _, n in lineage]
    return server(
        group_id=ids[-1],
        group_name=names[-1],
        group_path_ids=ids,
        group_path_names=names,
        group_path="/".join(names),
    )


ROOT = ("f" * 32, "VA1 Hardware")
IN_SLASHED_GROUP = placed(ROOT, (FIN_PROD, "Finance/Prod"))
IN_PROD = placed(ROOT, (FINANCE, "Finance"), (PROD, "Prod"))
DEEP_IN_PROD = placed(ROOT, (FINANCE, "Finance"), (PROD, "Prod"), (DEEP, "Deep"))


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ("Prod", {"prod", "deep"}),
        ("prod", {"prod", "deep"}),
        ("Finance/Prod", {"slashed"}),
        ("Finance", {"prod", "deep"}),
        (FINANCE, {"prod", "deep"}),
        (PROD, {"prod", "deep"}),
        (FIN_PROD, {"slashed"}),
        (DEEP, {"deep"}),
        ("VA1 Hardware", {"slashed", "prod", "deep"}),
    ],
)
def test_a_group_is_matched_by_its_whole_name_or_id_with_its_sub_groups(selector, selected):
    servers = {"slashed": IN_SLASHED_GROUP, "prod": IN_PROD, "deep": DEEP_IN_PROD}
    scope = Scope.build(groups=[selector])
    assert {k for k, s in servers.items() if classify(s, scope).state is None} == selected


def test_a_slash_joined_path_string_is_never_split():
    lone = server(group_id=FIN_PROD, group_name="Finance/Prod", group_path="VA1 Hardware/Finance/Prod")
    del lone["group_path_ids"], lone["group_path_names"]
    assert classify(lone, Scope.build(groups=["Prod"])).state is ServerState.SKIPPED_FILTERED
    assert classify(lone, Scope.build(groups=["Finance/Prod"])).state is None


def test_deny_beats_allow():
    scope = Scope.build(allow=["va1demoweb01"], deny=["va1demoweb01"])
    assert "deny" in classify(server(), scope).reason


def with_fields(**fields):
    custom = [{"id": "x", "name": k, "value": v, "displayValue": v} for k, v in fields.items()]
    return server(details={"powerState": "started", "inMaintenanceMode": False, "customFields": custom})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"Ring": " DEV ", "Environment": "qa"}, None),
        ({"ring": "dev", "Environment": "Staging"}, None),
        ({"Ring": "prod", "Environment": "qa"}, "custom field 'ring' is 'prod', not one of dev"),
        ({"Ring": "dev"}, "custom field 'environment' not set, not one of qa, staging"),
    ],
)
def test_custom_fields_keep_only_servers_whose_every_named_field_matches(fields, reason):
    scope = Scope.build(custom_fields={" Ring": "dev", "Environment": ["staging", "QA"]})
    plan = classify(with_fields(**fields), scope)
    if reason is None:
        assert (plan.state, plan.package_key) == (None, "linux_yum")
    else:
        assert (plan.state, plan.reason) == (ServerState.SKIPPED_FILTERED, reason)
