"""Fleet files: the demo fleet's promises, the generator, and precise errors for bad files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from simulator.fleet_file import FleetFileError, load_fleet_dict, load_fleet_file
from simulator.generator import generate_fleet, generate_fleet_doc
from simulator.oscatalog import lookup_os

GOOD = """
version: 1
data_centers: [{id: VA1}]
accounts:
  - alias: DEMO
    users: [{username: u, password: p}]
groups:
  - {account: DEMO, path: VA1/Web}
servers:
  - {name: VA1DEMOWEB01, account: DEMO, group: VA1/Web, os: centOS6_64Bit}
  - {name: VA1DEMOWEB02, account: DEMO, group: VA1/Web, os: centOS6_64Bit}
  - {name: VA1DEMOWEB03, account: DEMO, group: VA1/Web, os: centOS6_64Bit}
  - name: VA1DEMOWIN01
    account: DEMO
    group: VA1/Web
    os: windows2012R2DataCenter_64Bit
    patches: [{name: Update, kb: KB3133924, duration: 2m}]
"""


def write(tmp_path, text: str, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_demo_fleet_has_the_promised_shape(demo_fleet):
    servers = demo_fleet.servers
    assert 35 <= len(servers) <= 45
    assert set(demo_fleet.data_centers) == {"VA1", "UC1"}
    codes = {s.os for s in servers}
    supported = {
        "centOS5_64Bit",
        "centOS6_64Bit",
        "redHat5_64Bit",
        "redHat6_64Bit",
        "redHat7_64Bit",
        "windows2012DataCenter_64Bit",
        "windows2012R2DataCenter_64Bit",
    }
    assert supported <= codes
    unsupported = {c for c in codes if lookup_os(c).patch_package is None}
    assert {
        "ubuntu14_64Bit",
        "debian7_64Bit",
        "windows2008R2DataCenter_64bit",
        "centOS7_64Bit",
        "windows2016DataCenter_64Bit",
    } <= unsupported
    assert any(s.power_state == "stopped" and not s.is_template for s in servers)
    assert any(s.is_template for s in servers)
    assert any(p.failure == "fail" for s in servers for p in s.patches)
    assert any(len({p.cycle for p in s.patches}) == 3 for s in servers)
    assert any(s.description == "<script>alert(1)</script>" for s in servers)
    assert any(s.description == '"quoted, comma"' for s in servers)
    accounts = {a.alias: a for a in demo_fleet.accounts}
    assert accounts["DEMB"].parent == "DEMO" and accounts["OTHR"].parent is None
    # every demo patch takes minutes, so --time-scale 0.01 finishes in about a minute
    assert all(60 <= p.duration <= 900 for s in servers for p in s.patches)


def test_good_file_loads_with_defaults(tmp_path):
    fleet = load_fleet_file(write(tmp_path, GOOD, "good.yaml"))
    win = fleet.servers[3]
    assert win.os == "windows2012R2DataCenter_64Bit" and win.patches[0].reboot is True
    assert win.patches[0].duration == 120 and win.patches[0].failure == "none"
    assert fleet.servers[0].power_state == "started" and fleet.servers[0].status == "active"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "os: centOS6_64Bit}\n  - {name: VA1DEMOWEB02",
            "os: win95}\n  - {name: VA1DEMOWEB02",
            "bad.yaml: servers[0].os: 'win95' is not a known OS code",
        ),
        (
            "VA1DEMOWEB02",
            "VA1DEMOWEBSERVER02",
            "bad.yaml: servers[1].name: 'VA1DEMOWEBSERVER02' does not follow the naming convention",
        ),
        ("VA1DEMOWEB03", "UC1DEMOWEB03", "bad.yaml: servers[2].name: 'UC1DEMOWEB03' does not follow"),
        (
            "VA1DEMOWEB03",
            "VA1DEMOWEB01",
            "bad.yaml: servers[2].name: 'VA1DEMOWEB01' is already used by servers[0]",
        ),
        ("kb: KB3133924", "kb: 3133924", "bad.yaml: servers[3].patches[0].kb: '3133924' is not a KB number"),
        (
            "duration: 2m",
            "duration: soon",
            "bad.yaml: servers[3].patches[0].duration: must be seconds or a duration like '4m30s', "
            "got 'soon'",
        ),
        (
            "group: VA1/Web, os: centOS6_64Bit}\n  - {name: VA1DEMOWEB02",
            "group: VA1/Db, os: centOS6_64Bit}\n  - {name: VA1DEMOWEB02",
            "bad.yaml: servers[0].group: group 'VA1/Db' is not declared for account DEMO",
        ),
        (
            "alias: DEMO",
            "alias: demo-corp",
            "bad.yaml: accounts[0].alias: 'demo-corp' is not an account alias",
        ),
        ("{id: VA1}", "{id: Virginia}", "bad.yaml: data_centers[0].id: 'VIRGINIA' is not a data center code"),
        (
            "users: [{username: u, password: p}]",
            "users: [{username: u, password: p, roles: [God]}]",
            "bad.yaml: accounts[0].users[0].roles[0]: 'God' is not a known role",
        ),
        ("version: 1", "version: 1\nflavour: x", "bad.yaml: flavour: unknown field"),
        (
            "os: windows2012R2DataCenter_64Bit",
            "os: windows2012R2DataCenter_64Bit\n    power_state: on",
            "bad.yaml: servers[3].power_state: True is not one of started, stopped, paused",
        ),
        (
            "patches: [{name: Update, kb: KB3133924, duration: 2m}]",
            "patches: [{name: Update, kb: KB3133924, failure: sometimes}]",
            "bad.yaml: servers[3].patches[0].failure: 'sometimes' is not one of none, fail, fail_once",
        ),
    ],
)
def test_bad_files_name_file_field_and_problem(tmp_path, old, new, message):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(FleetFileError) as err:
        load_fleet_file(path)
    assert str(err.value).startswith(str(tmp_path)), err.value
    assert message in str(err.value)


def test_linux_patch_needs_a_nevra_package(tmp_path):
    text = GOOD.replace(
        "os: centOS6_64Bit}\n  - {name: VA1DEMOWEB02",
        "os: centOS6_64Bit, patches: [{package: openssl}]}\n  - {name: VA1DEMOWEB02",
        1,
    )
    with pytest.raises(
        FleetFileError, match=r"servers\[0\]\.patches\[0\]\.package: 'openssl' is not a package NEVRA"
    ):
        load_fleet_file(write(tmp_path, text))


def test_missing_required_field_and_undeclared_parent(tmp_path):
    with pytest.raises(FleetFileError, match=r"bad\.yaml: servers\[0\]\.os: is required"):
        load_fleet_file(write(tmp_path, GOOD.replace(", os: centOS6_64Bit}", "}", 1)))
    text = GOOD.replace("path: VA1/Web}", "path: VA1/Web/Deep/Er}", 1)
    with pytest.raises(
        FleetFileError, match=r"groups\[0\]\.path: parent group 'VA1/Web/Deep' must be declared"
    ):
        load_fleet_file(write(tmp_path, text))


def test_unreadable_empty_and_broken_yaml(tmp_path):
    with pytest.raises(FleetFileError, match=r"nope\.yaml: cannot read fleet file"):
        load_fleet_file(tmp_path / "nope.yaml")
    with pytest.raises(FleetFileError, match=r"empty\.yaml: the file is empty"):
        load_fleet_file(write(tmp_path, "", "empty.yaml"))
    with pytest.raises(FleetFileError, match=r"broken\.yaml: line \d+, column \d+: invalid YAML"):
        load_fleet_file(write(tmp_path, "servers: [a, b\nx: ]", "broken.yaml"))


def test_account_parent_cycle_is_reported():
    doc = {
        "data_centers": [{"id": "VA1"}],
        "accounts": [{"alias": "AAA", "parent": "BBB"}, {"alias": "BBB", "parent": "AAA"}],
    }
    with pytest.raises(FleetFileError, match=r"<x>: accounts\[0\]\.parent: account hierarchy has a cycle"):
        load_fleet_dict(doc, source="<x>")


def test_generator_is_deterministic_and_valid():
    assert generate_fleet_doc(300, seed=7) == generate_fleet_doc(300, seed=7)
    assert generate_fleet_doc(300, seed=7) != generate_fleet_doc(300, seed=8)
    fleet = generate_fleet(300, seed=7)
    assert len(fleet.servers) == 300
    assert len({s.name for s in fleet.servers}) == 300
    assert {s.data_center for s in fleet.servers} == {"VA1", "UC1"}
    assert any(s.patches for s in fleet.servers)


SLASHED = """
version: 1
clock: {start: 2016-03-14T02:00:00Z}
data_centers: [{id: VA1}]
accounts:
  - alias: DEMO
    users: [{username: u, password: p}]
groups:
  - {account: DEMO, path: VA1/Finance}
  - {account: DEMO, path: VA1/Finance/Prod}
  - {account: DEMO, path: [VA1, Finance/Prod]}
  - {account: DEMO, path: [va1, Finance/Prod, "EU/West"]}
servers:
  - {name: VA1DEMOFIN01, account: DEMO, group: VA1/Finance/Prod, os: centOS6_64Bit}
  - {name: VA1DEMOFIN02, account: DEMO, group: [VA1, Finance/Prod], os: centOS6_64Bit}
  - {name: VA1DEMOFIN03, account: DEMO, group: [VA1, Finance/Prod, EU/West], os: centOS6_64Bit}
"""


def test_group_names_with_a_slash_are_written_as_path_lists(tmp_path):
    """'Finance/Prod' (one name) and 'Finance' > 'Prod' (two levels) stay distinct groups."""
    fleet = load_fleet_file(write(tmp_path, SLASHED, "slashed.yaml"))
    assert [g.segments for g in fleet.groups] == [
        ("VA1", "Finance"),
        ("VA1", "Finance", "Prod"),
        ("VA1", "Finance/Prod"),
        ("VA1", "Finance/Prod", "EU/West"),
    ]
    assert len({g.path for g in fleet.groups}) == 4
    assert [s.group_path for s in fleet.servers] == [
        "VA1/Finance/Prod",
        "VA1/Finance\\/Prod",
        "VA1/Finance\\/Prod/EU\\/West",
    ]


def test_slashed_group_names_reach_the_api_unsplit(tmp_path):
    from simulator.clock import ManualClock
    from simulator.core import Simulator, SimulatorSettings

    fleet = load_fleet_file(write(tmp_path, SLASHED, "slashed.yaml"))
    sim = Simulator(fleet, SimulatorSettings(), clock=ManualClock(fleet.clock_start))
    root = sim.groups[sim.group_by_path[("DEMO", "VA1")]]
    tops = {sim.groups[c].name: sim.groups[c] for c in root.children}
    assert set(tops) == {"Finance", "Finance/Prod"}
    assert [sim.groups[c].name for c in tops["Finance/Prod"].children] == ["EU/West"]
    assert [sim.groups[c].name for c in tops["Finance"].children] == ["Prod"]
    placed = {s.id: sim.groups[s.group_id].name for s in sim.servers.values()}
    assert placed == {"va1demofin01": "Prod", "va1demofin02": "Finance/Prod", "va1demofin03": "EU/West"}


def test_existing_string_paths_keep_their_group_ids(tmp_path):
    from simulator.core import Simulator
    from simulator.entities import hex_id

    sim = Simulator(load_fleet_file(write(tmp_path, GOOD, "good.yaml")))
    assert sim.servers["va1demoweb01"].group_id == hex_id("DEMO", "VA1/Web")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("[VA1, '']", "groups[0].path[1]: every name in a path list must be a non-empty string"),
        ("[VA1]", "groups[0].path: 'VA1' must look like 'VA1/Group/Subgroup'"),
        ("[XX9, A/B]", "groups[0].path: data center 'XX9' is not declared"),
        ("VA1//Web", "groups[0].path: 'VA1//Web' has an empty group name"),
        ("{a: 1}", "groups[0].path: must be a path like 'VA1/Group/Subgroup' or a list of names"),
        ("[VA1, A/B, C]", "parent group \"['VA1', 'A/B']\" must be declared before"),
    ],
)
def test_bad_group_paths_are_named(tmp_path, path, message):
    text = GOOD.replace("path: VA1/Web}", f"path: {path}}}", 1)
    with pytest.raises(FleetFileError) as err:
        load_fleet_file(write(tmp_path, text))
    assert message in str(err.value)


@pytest.mark.parametrize("start", ['"2016-03-14T02:00:00Z"', "2016-03-14T02:00:00Z", "2016-03-14 02:00:00"])
def test_clock_start_quoted_or_as_a_yaml_timestamp(tmp_path, start):
    text = GOOD.replace("version: 1", f"version: 1\nclock: {{start: {start}}}")
    fleet = load_fleet_file(write(tmp_path, text))
    assert fleet.clock_start == 1457920800.0  # 2016-03-14T02:00:00Z


def docs_example_fleet(tmp_path) -> Path:
    """The fleet example of docs/simulator.md, exactly as printed there."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "simulator.md").read_text()
    start = text.index("```yaml\nversion: 1")
    body = text[start + len("```yaml\n") : text.index("```", start + 7)]
    return write(tmp_path, body, "docs-example.yaml")


def test_the_docs_fleet_example_loads_and_patches_on_its_2016_clock(tmp_path):
    from fastapi.testclient import TestClient

    from simulator.app import create_app
    from simulator.clock import ManualClock, parse_iso
    from simulator.core import Simulator, SimulatorSettings

    fleet = load_fleet_file(docs_example_fleet(tmp_path))
    assert fleet.clock_start == parse_iso("2016-03-14T02:00:00Z")
    clock = ManualClock(fleet.clock_start)
    sim = Simulator(fleet, SimulatorSettings(), clock=clock)
    with TestClient(create_app(sim)) as client:
        token = client.post(
            "/v2/authentication/login", json={"username": "demo.admin", "password": "demo-password"}
        )
        auth = {"Authorization": f"Bearer {token.json()['bearerToken']}"}
        for server, package in (
            ("VA1DEMOWEB01", "c3c6642e-24e1-4c37-b56a-1cf1476ee360"),
            ("VA1DEMOWIN01", "b229535c-a313-4a31-baf8-6aa71ff4b9ed"),
        ):
            body = {"servers": [server], "package": {"packageId": package, "parameters": {}}}
            r = client.post("/v2/operations/DEMO/servers/executePackage", headers=auth, json=body)
            assert r.status_code == 200 and r.json()[0]["isQueued"] is True
        clock.tick(6 * 3600)
        for server in ("va1demoweb01", "va1demowin01"):
            (ex,) = client.get(f"/patching/rest/servers/DEMO/server/{server}/patch", headers=auth).json()
            assert ex["status"] == "completed" and ex["start_time"].startswith("2016-03-14T02:")
