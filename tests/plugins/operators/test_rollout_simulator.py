"""Integration: the real CLC simulator process, the real hooks, trigger and rollout operator."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from patchflow.hooks.clc import ClcHook
from tests.plugins.operators.conftest import Driver, write_plan

ROOT = Path(__file__).resolve().parents[3]
SIM = ROOT / "simulator" / "__main__.py"
FLEET = ROOT / "simulator" / "fleets" / "demo.yaml"
PATCHABLE = ("centos5", "centos6", "redhat5", "redhat6", "redhat7")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SIM.exists() or not FLEET.exists(), reason="simulator not available"),
]


@pytest.fixture(scope="module")
def simulator():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "--fleet",
            str(FLEET),
            "--port",
            "0",
            "--time-scale",
            "0.002",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "CLC simulator ready at " in line, line
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def sim_conn(simulator, monkeypatch):
    extra = {"account_alias": "DEMO", "patching_base_url": f"{simulator}/patching/rest", "timeout": 10}
    conn = {
        "conn_type": "http",
        "host": f"{simulator}/v2",
        "login": "demo.admin",
        "password": "demo-password",
        "extra": extra,
    }
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", json.dumps(conn))
    return simulator


def counters(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/_sim/counters", timeout=5) as resp:
        return json.load(resp)


def linux_targets(servers: list[dict], n: int) -> list[dict]:
    out = []
    for s in servers:
        details = s.get("details") or {}
        if (
            str(s.get("os", "")).lower().startswith(PATCHABLE)
            and s.get("status") == "active"
            and details.get("powerState") == "started"
            and not s.get("isTemplate")
        ):
            out.append(
                {
                    "id": s["id"].lower(),
                    "package_key": "linux_yum",
                    "state": None,
                    "in_maintenance": bool(details.get("inMaintenanceMode")),
                }
            )
    return out[:n]


def test_inventory_against_the_simulator(sim_conn):
    servers = ClcHook().inventory("DEMO")
    assert len(servers) >= 10
    assert len({s["id"].lower() for s in servers}) == len(servers)
    assert all(s["group_path_names"] and s["group_path_names"][-1] == s["group_name"] for s in servers)
    assert all(len(s["group_path_ids"]) == len(s["group_path_names"]) and s["data_center"] for s in servers)


def test_rollout_against_the_simulator_executes_once_per_server(sim_conn, tmp_path):
    targets = linux_targets(ClcHook().inventory("DEMO"), 4)
    assert targets
    plan = write_plan(tmp_path, targets)
    before = counters(sim_conn).get("executions_per_server", {})
    out = Driver(
        plan_path=str(plan),
        max_concurrency=2,
        max_errors=len(targets),
        server_timeout=120,
    ).run(max_turns=200)
    after = counters(sim_conn).get("executions_per_server", {})
    rows = json.loads(Path(out["results_path"]).read_text())["servers"]
    assert {r["server_id"] for r in rows} == {t["id"] for t in targets}
    assert all(r["state"] in {"patched", "patched_no_updates", "failed"} for r in rows), rows
    for t in targets:
        key = next(k for k in after if k.lower() == t["id"])
        assert after[key] - before.get(key, 0) == 1  # I1 against the real simulator
    hook = ClcHook()
    time.sleep(1.0)  # the stopMaintenance queue jobs take (simulated) time
    still = [
        t["id"]
        for t in targets
        if not t["in_maintenance"]
        and (hook.get_server("DEMO", t["id"]).get("details") or {}).get("inMaintenanceMode")
    ]
    assert still == [], {r["server_id"]: r["maintenance"] for r in rows}
