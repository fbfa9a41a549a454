"""The health check's pure parts (``include.patching.health``): probe templates and server details."""

from __future__ import annotations

import pytest

from include.patching.health import HealthSpec, judge_details, probe_problem, render

SERVER = {
    "id": "va1demoweb01",
    "name": "VA1DEMOWEB01",
    "status": "active",
    "locationId": "VA1",
    "details": {
        "powerState": "started",
        "hostName": "va1demoweb01",
        "ipAddresses": [{"internal": "10.0.0.5"}, {"public": "64.94.114.241", "internal": "10.0.0.5"}],
        "customFields": [
            {"id": "1", "name": "Health URL", "value": "https://x/h", "displayValue": "https://x/h"}
        ],
    },
}


@pytest.mark.parametrize(
    "template",
    ["http://{ip}:8080/health", "https://{hostname}/ok", "tcp://{ip}:22", "{custom[Health URL]}", "", None],
)
def test_good_probes(template):
    assert probe_problem(template) is None


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("ftp://{ip}/", "must start with http://, https:// or tcp://"),
        ("tcp://{ip}", "tcp://host:port"),
        ("http://{address}/", "'{address}' is not a known placeholder"),
        ("http://{custom}/", "is not a known placeholder"),
        (42, "expected an http(s):// URL"),
    ],
)
def test_bad_probes_are_named(template, problem):
    assert problem in str(probe_problem(template))


def test_render_fills_placeholders_from_the_server_details():
    assert render("http://{ip}:8080/{name}", SERVER) == "http://10.0.0.5:8080/VA1DEMOWEB01"
    assert render("tcp://{public_ip}:443", SERVER) == "tcp://64.94.114.241:443"
    assert render("{custom[health url]}", SERVER) == "https://x/h"  # field names: any case
    with pytest.raises(ValueError, match=r"no value for \{custom\[cluster\]\}"):
        render("{custom[cluster]}", SERVER)


def test_details_must_say_active_and_started():
    assert judge_details(SERVER) is None
    assert judge_details({**SERVER, "status": "archived"}) == "status is 'archived', not 'active'"
    stopped = {**SERVER, "details": {"powerState": "stopped"}}
    assert judge_details(stopped) == "power state is 'stopped', not 'started'"


def test_the_spec_round_trips_and_needs_one_try_at_least():
    spec = HealthSpec(probe="tcp://{ip}:22", retries=3, timeout=1.5, interval=4.0)
    assert HealthSpec.from_dict(spec.as_dict()) == spec
    assert HealthSpec.from_dict({"retries": 0}).retries >= 1
