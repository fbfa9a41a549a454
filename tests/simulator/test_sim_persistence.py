"""State survives a real ``kill -9``: nothing accepted is lost and executions carry on."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
LINUX = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"


def test_kill_dash_9_loses_nothing_and_executions_carry_on(start_process, tmp_path_factory):
    state = tmp_path_factory.mktemp("sim") / "state.json"
    args = (
        "--fleet",
        "simulator/fleets/demo.yaml",
        "--time-scale",
        "1",
        "--seed",
        "5",
        "--state-file",
        str(state),
    )
    first = start_process(*args)
    with httpx.Client(base_url=first.url, timeout=10) as c:
        token = c.post(
            "/v2/authentication/login", json={"username": "demo.admin", "password": "demo-password"}
        )
        auth = {"Authorization": f"Bearer {token.json()['bearerToken']}"}
        r = c.post(
            "/v2/operations/DEMO/servers/executePackage",
            headers=auth,
            json={"servers": ["VA1DEMOWEB01"], "package": {"packageId": LINUX, "parameters": {}}},
        )
        assert r.status_code == 200
        job = r.json()[0]["links"][0]["id"]
        r = c.post("/v2/operations/DEMO/servers/startMaintenance", headers=auth, json=["VA1DEMOWEB02"])
        assert r.status_code == 200
        c.post("/_sim/clock/advance", json={"seconds": 60})
        (ex,) = c.get("/patching/rest/servers/DEMO/server/va1demoweb01/patch", headers=auth).json()
        assert ex["status"] == "pending"
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL

    second = start_process(*args)
    with httpx.Client(base_url=second.url, timeout=10) as c:
        # the old token is still valid, the job and the running execution are still there
        assert c.get(f"/v2/operations/DEMO/status/{job}", headers=auth).json() == {"status": "succeeded"}
        (again,) = c.get("/patching/rest/servers/DEMO/server/va1demoweb01/patch", headers=auth).json()
        assert again["execution_id"] == ex["execution_id"] and again["start_time"] == ex["start_time"]
        assert c.get("/v2/servers/DEMO/va1demoweb02", headers=auth).json()["details"]["inMaintenanceMode"]
        counters = c.get("/_sim/counters").json()
        assert counters["executions_per_server"] == {"va1demoweb01": 1}
        assert counters["requests"]["POST /v2/operations/{alias}/servers/executePackage"] == {"200": 1}
        assert [m["kind"] for m in c.get("/_sim/outbox").json()["emails"]] == ["patch_requested"]
        # a retried request after the crash is a duplicate, not a second execution (invariant I1)
        r = c.post(
            "/v2/operations/DEMO/servers/executePackage",
            headers=auth,
            json={"servers": ["VA1DEMOWEB01"], "package": {"packageId": LINUX, "parameters": {}}},
        )
        assert r.status_code == 400
        c.post("/_sim/clock/advance", json={"seconds": 3600})
        (done,) = c.get("/patching/rest/servers/DEMO/server/va1demoweb01/patch", headers=auth).json()
        assert done["status"] == "completed"
    assert second.stop(signal.SIGTERM) == 0
    third = start_process(*args)
    with httpx.Client(base_url=third.url, timeout=10) as c:
        kinds = [m["kind"] for m in c.get("/_sim/outbox").json()["emails"]]
        assert kinds == ["patch_requested", "patch_completed"]
        assert c.get("/_sim/counters").json()["duplicate_executions_rejected"] == {"va1demoweb01": 1}


def test_bad_fleet_file_exits_2_with_a_precise_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "data_centers: [{id: VA1}]\naccounts: [{alias: DEMO}]\n"
        "servers: [{name: VA1DEMOWEB01, account: DEMO, group: VA1, os: win95}]\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "--fleet", str(bad), "--port", "0"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"{bad}: servers[0].os: 'win95' is not a known OS code" in proc.stderr
