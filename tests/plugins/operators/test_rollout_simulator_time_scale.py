"""The rollout at ``time_scale`` 0.01 against a real simulator process at ``--time-scale 0.01``.

Every timing of patchflow is scaled like the simulator's clock, so these runs meet the races a
production run meets: a big batch whose executions start minutes after the request, an API
clock years away from ours. Assertions read the simulator's own state and counters.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from launcher.env import SIMULATOR_TIME_SCALE, clc_connection, time_scale_env
from launcher.processes import SimulatorProcess
from patchflow.hooks.clc import ClcHook
from patchflow.hooks.clc_async import ClcAsyncHook
from simulator.generator import generate_fleet_doc
from tests.plugins.operators.conftest import Driver, write_plan

ROOT = Path(__file__).resolve().parents[3]
DEMO_FLEET = ROOT / "simulator" / "fleets" / "demo.yaml"
PATCHABLE_LINUX = ("centos5", "centos6", "redhat5", "redhat6", "redhat7")
EXECUTE_ROUTE = "POST /v2/operations/{alias}/servers/executePackage"

pytestmark = pytest.mark.slow


def admin(base: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def use(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", clc_connection(base))
    for key, value in time_scale_env(SIMULATOR_TIME_SCALE).items():
        monkeypatch.setenv(key, value)


def patchable_linux(server: dict) -> bool:
    details = server.get("details") or {}
    return (
        str(server.get("os", "")).lower().startswith(PATCHABLE_LINUX)
        and details.get("powerState") == "started"
        and server.get("status") == "active"
        and not server.get("isTemplate")
        and not details.get("inMaintenanceMode")
    )


def linux_plan_rows(servers: list[dict], first: tuple[str, ...] = ()) -> list[dict]:
    rows = [
        {"id": s["id"].lower(), "package_key": "linux_yum", "state": None}
        for s in servers
        if patchable_linux(s)
    ]
    rows.sort(key=lambda r: r["id"] not in first)
    return rows


class MaintenanceWatch:
    """Polls the simulator's state: no target may leave maintenance before its execution completed."""

    def __init__(self, base: str, ids: list[str]) -> None:
        self.base, self.ids = base, set(ids)
        self.seen_on: set[str] = set()
        self.violations: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MaintenanceWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            servers = admin(self.base, "GET", "/_sim/state")["servers"]
            for sid in self.ids:
                server = servers[sid]
                if server["inMaintenanceMode"]:
                    self.seen_on.add(sid)
                elif sid in self.seen_on and (server["activeExecution"] or not server["executions"]):
                    self.violations.append(f"{sid} left maintenance with its package pending or not started")
            self._stop.wait(0.2)


def wait_until_released(base: str, ids: list[str], *, timeout: float) -> None:
    """Until no target is in maintenance, or ``timeout`` (the test's assertions then say which)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        servers = admin(base, "GET", "/_sim/state")["servers"]
        if not any(servers[sid]["inMaintenanceMode"] for sid in ids):
            return
        time.sleep(0.2)


def test_a_lost_answer_for_a_big_batch_gives_exactly_one_execution_per_server(tmp_path, monkeypatch):
    """Item 4 at scale: 80 servers in one Execute Package whose answer is dropped. The platform
    starts them one after another (5 simulated s apart), so the last ones start 400 s after the
    request — beyond the old 300 s grace. Each must get one execution, be adopted and end with the
    service's outcome, and stay in maintenance until that execution completed."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(json.dumps(generate_fleet_doc(160, seed=7)))  # JSON is YAML
    with SimulatorProcess(fleet, time_scale=SIMULATOR_TIME_SCALE, log_path=tmp_path / "sim.log") as sim:
        use(sim.base_url, monkeypatch)
        rows = linux_plan_rows(ClcHook().inventory("DEMO"))[:80]
        assert len(rows) == 80
        ids = [r["id"] for r in rows]
        plan = write_plan(tmp_path, rows)
        admin(sim.base_url, "POST", "/_sim/faults", {"kind": "drop", "route": EXECUTE_ROUTE, "count": 1})
        with MaintenanceWatch(sim.base_url, ids) as watch:
            out = Driver(
                fast=False,
                plan_path=str(plan),
                max_concurrency=80,
                max_errors=80,
                event_limit=120,
                request_chunk=80,  # the scenario: one request for all 80 (not the default chunks)
            ).run(max_turns=400)
            # the last finished servers share one stopMaintenance job, processed one server
            # after another: it lands shortly after the rollout (the release task waits for it)
            wait_until_released(sim.base_url, ids, timeout=30.0)
        counters = admin(sim.base_url, "GET", "/_sim/counters")
        state = admin(sim.base_url, "GET", "/_sim/state")
    assert counters["faults_injected"], "the answer was never dropped"
    assert counters["requests"][EXECUTE_ROUTE] == {"200": 1}  # one request, never re-sent
    assert counters["executions_per_server"] == dict.fromkeys(ids, 1)  # I1
    assert not counters["duplicate_executions_rejected"]
    results = {r["server_id"]: r for r in json.loads(Path(out["results_path"]).read_text())["servers"]}
    for sid in ids:
        row, truth = results[sid], state["servers"][sid]
        assert row["state"] in {"patched", "patched_no_updates"}, (sid, row["state"], row["reason"])
        assert row["execution_id"] == truth["executions"][0] and row["submissions"] == 1
        assert not truth["inMaintenanceMode"]  # released (I2) ...
    assert watch.seen_on == set(ids) and watch.violations == []  # ... but only once it was over


def fleet_with_clock(tmp_path: Path, start: str) -> Path:
    text = DEMO_FLEET.read_text().replace("version: 1\n", f'version: 1\nclock: {{start: "{start}"}}\n', 1)
    path = tmp_path / "demo-clock.yaml"
    path.write_text(text)
    return path


async def read_summaries(times: int) -> None:
    async with ClcAsyncHook().client() as api:
        for _ in range(times):
            await api.get_patch_summary("DEMO", "va1demoapp01")


@pytest.mark.parametrize("start", ["2016-03-14T02:00:00Z", "2036-03-14T02:00:00Z"])
def test_an_api_clock_years_away_from_ours(tmp_path, monkeypatch, start):
    """Item 6 against a real process: one login per process, not one per request; executions found
    and completed (no time floor); VA1DEMOAPP01's patch that failed once then installed is patched."""
    with SimulatorProcess(
        fleet_with_clock(tmp_path, start), time_scale=SIMULATOR_TIME_SCALE, log_path=tmp_path / "sim.log"
    ) as sim:
        use(sim.base_url, monkeypatch)
        hook = ClcHook()
        for _ in range(15):
            hook.get_server("DEMO", "va1demoapp01")
        asyncio.run(read_summaries(15))
        # one login for the process: the async client takes the hook's token from the cache
        assert admin(sim.base_url, "GET", "/_sim/counters")["logins"]["succeeded"] == 1
        rows = linux_plan_rows(hook.inventory("DEMO"), first=("va1demoapp01",))[:4]
        plan = write_plan(tmp_path, rows)
        out = Driver(fast=False, plan_path=str(plan), max_concurrency=4, max_errors=4, event_limit=120).run()
        counters = admin(sim.base_url, "GET", "/_sim/counters")
    results = {r["server_id"]: r for r in json.loads(Path(out["results_path"]).read_text())["servers"]}
    assert {r["state"] for r in results.values()} <= {"patched", "patched_no_updates"}, results
    assert counters["executions_per_server"] == {r["id"]: 1 for r in rows}
    app = results["va1demoapp01"]
    assert app["state"] == "patched" and app["patches_failed"] == 0
    assert {p["name"].split("-")[0]: p["attempts"] for p in app["patches"]} == {"openssl": 2, "sudo": 1}
    assert app["reboots"] is None and app["attempts"] >= 2


def test_a_lost_answer_whose_executions_start_fifteen_minutes_late(tmp_path, monkeypatch):
    """Item 4 with a backed-up queue: every job of the platform starts 900 simulated s late
    (``/_sim/config`` ``queue_delay``), three times the old grace. Maintenance mode is off so that
    only the Execute Package job is delayed."""
    with SimulatorProcess(DEMO_FLEET, time_scale=SIMULATOR_TIME_SCALE, log_path=tmp_path / "sim.log") as sim:
        use(sim.base_url, monkeypatch)
        rows = linux_plan_rows(ClcHook().inventory("DEMO"))[:6]
        ids = [r["id"] for r in rows]
        plan = write_plan(tmp_path, rows)
        admin(sim.base_url, "POST", "/_sim/config", {"queue_delay": 900})
        admin(sim.base_url, "POST", "/_sim/faults", {"kind": "drop", "route": EXECUTE_ROUTE, "count": 1})
        driver = Driver(
            fast=False,
            plan_path=str(plan),
            max_concurrency=6,
            max_errors=6,
            maintenance_mode=False,
            event_limit=120,
            request_chunk=6,  # one request whose answer is lost
        )
        out = driver.run()
        counters = admin(sim.base_url, "GET", "/_sim/counters")
    assert counters["requests"][EXECUTE_ROUTE] == {"200": 1}
    assert counters["executions_per_server"] == dict.fromkeys(ids, 1)
    results = json.loads(Path(out["results_path"]).read_text())["servers"]
    assert {r["state"] for r in results} <= {"patched", "patched_no_updates", "failed"}
    assert not [r for r in results if "lost" in r["reason"]]
