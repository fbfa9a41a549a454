"""The real CLC simulator, in-process on a free port, with a small fleet built for each test.

The hooks, the trigger and the operators talk real HTTP to it (uvicorn in a thread, no
process). Time is the simulator's own scaled clock (``TIME_SCALE`` wall seconds per simulated
second), so queue jobs land and executions complete within a fraction of a second; ``settle``
pushes the simulated clock ahead so every queued job has landed. Faults are the simulator's
opt-in fault kinds (``simulator/faults.py``), added through its admin API. A thin recorder in
front of the app keeps every request (method, path, headers, JSON body) for the assertions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn

from simulator.app import create_app
from simulator.clock import Clock
from simulator.core import Simulator, SimulatorSettings
from simulator.fleet_file import load_fleet_dict
from tests.sim_client import SimulatorClient

ALIAS = "DEMO"
USER = "demo.admin"
PASSWORD = "demo-password-xyz"
TIME_SCALE = 0.01
"""Wall seconds per simulated second: a 20 s patch run takes 0.2 s."""
SETTLE_SECONDS = 3600.0
LINUX_PACKAGE = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"
SECURITY_UPDATE = "openssl-1.0.1e-42.el6_7.4.x86_64"
ONE_PATCH = ({"package": SECURITY_UPDATE, "duration": 2},)
"""Every server's default: one patch, no reboot (two initiations: install, then the final scan)."""
EXECUTE = "POST /v2/operations/{alias}/servers/executePackage"
START_MAINTENANCE = "POST /v2/operations/{alias}/servers/startMaintenance"
STOP_MAINTENANCE = "POST /v2/operations/{alias}/servers/stopMaintenance"
JOB_STATUS = "GET /v2/operations/{alias}/status/{jobId}"
SUMMARY = "GET /patching/rest/servers/{alias}/server/{serverId}/patch"
LOGIN = "POST /v2/authentication/login"
WINDOWS = "windows2012R2DataCenter_64Bit"
"""A server the Linux package fails on: its queue job ends ``failed`` and no execution starts."""
SERVER = "GET /v2/servers/{alias}/{serverId}"

#: The fleet most tests use: three servers in VA1 (groups Web and DB), one in DE1 (group App).
FOUR_SERVERS: dict[str, dict[str, Any]] = {
    "va1demoweb01": {"group": "Web"},
    "va1demoweb02": {"group": "Web"},
    "va1demodb01": {"group": "DB"},
    "de1demoapp01": {"dc": "DE1", "group": "App"},
}


def fleet_with(**changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The four-server fleet with some servers changed: ``fleet_with(va1demodb01={"patches": []})``."""
    return {sid: {**spec, **changes.get(sid, {})} for sid, spec in FOUR_SERVERS.items()}


def fleet_doc(servers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A fleet document for the account DEMO: ``{server_id: {dc, group, os, maintenance, patches}}``
    (and the fleet file's ``power_state``, ``status``, ``is_template``, ``description``)."""
    rows, groups = [], set()
    for sid, spec in servers.items():
        dc = spec.get("dc", "VA1")
        group = f"{dc}/{spec.get('group', 'Web')}"
        groups.add(group)
        rows.append(
            {
                "name": sid.upper(),
                "account": ALIAS,
                "group": group,
                "os": spec.get("os", "centOS6_64Bit"),
                "in_maintenance": spec.get("maintenance", False),
                "scan_seconds": 1,
                "reboot_seconds": 5,
                "patches": list(spec.get("patches", ONE_PATCH)),
                **{
                    k: spec[k]
                    for k in (
                        "power_state",
                        "status",
                        "is_template",
                        "description",
                        "custom_fields",
                        "unhealthy_after_patch",
                    )
                    if k in spec
                },
            }
        )
    user = {"username": USER, "password": PASSWORD, "email": "demo.admin@example.com"}
    roles = ["AccountAdmin", "ServerAdmin", "ServerOperator"]
    return {
        "version": 1,
        "data_centers": [{"id": dc} for dc in sorted({s.get("dc", "VA1") for s in servers.values()})],
        "accounts": [
            {"alias": ALIAS, "name": "Demo", "primary_data_center": "VA1", "users": [user | {"roles": roles}]}
        ],
        "groups": [{"account": ALIAS, "path": g} for g in sorted(groups)],
        "servers": rows,
    }


@dataclass(frozen=True)
class Seen:
    """One request as it reached the simulator."""

    method: str
    path: str
    """Path and query string."""
    headers: dict[str, str]
    body: Any


class _Recorder:
    """ASGI wrapper that keeps each request; ``send`` is passed on untouched (the ``drop`` fault
    needs uvicorn's own to cut the connection)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[Seen] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        raw = b"".join(chunks)
        query = scope.get("query_string", b"").decode()
        self.seen.append(
            Seen(
                scope["method"],
                scope["path"] + (f"?{query}" if query else ""),
                {k.decode().lower(): v.decode() for k, v in scope["headers"]},
                json.loads(raw) if raw.strip() else None,
            )
        )
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Cloud:
    """One simulator serving one fleet; the CLC connection for it is ``conn_json()``."""

    def __init__(
        self,
        servers: Mapping[str, Mapping[str, Any]] = FOUR_SERVERS,
        *,
        api_clock_offset: float = 0.0,
        token_lifetime: int | None = None,
    ) -> None:
        """``api_clock_offset``: seconds the API's clock starts ahead of ours (negative: behind)."""
        settings = SimulatorSettings(seed=1, time_scale=TIME_SCALE)
        if token_lifetime is not None:
            settings.token_lifetime = token_lifetime
        clock = Clock(start=time.time() + api_clock_offset, time_scale=TIME_SCALE)
        self.sim = Simulator(
            load_fleet_dict(fleet_doc(servers), source="<test fleet>"), settings, clock=clock
        )
        self._recorder = _Recorder(create_app(self.sim))
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            self._recorder,
            log_level="warning",
            access_log=False,
            lifespan="off",
            date_header=False,  # the app dates answers on the simulated clock, as simulator/server.py
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self.base = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.admin = SimulatorClient(self.base)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Cloud:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the in-process simulator did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving: from now on connections are refused."""
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()

    def conn_json(self, **extra: Any) -> str:
        """An Airflow connection (JSON) for this simulator; no backoff waits unless ``extra`` says so."""
        return json.dumps(
            {
                "conn_type": "http",
                "host": f"{self.base}/v2",
                "login": USER,
                "password": PASSWORD,
                "extra": {
                    "account_alias": ALIAS,
                    "patching_base_url": f"{self.base}/patching/rest",
                    "timeout": 5,
                    "retry_base": 0.0,
                    "retry_cap": 0.0,
                    **extra,
                },
            }
        )

    # --- what happened -----------------------------------------------------------------------

    @property
    def requests(self) -> list[Seen]:
        return list(self._recorder.seen)

    def sent(self, *, method: str | None = None, containing: str = "") -> list[Seen]:
        return [r for r in self.requests if (method is None or r.method == method) and containing in r.path]

    def counted(self, route: str) -> int:
        """Requests the simulator answered on a route template (``"GET /v2/servers/{alias}/{serverId}"``)."""
        return sum(self.sim.counters["requests"].get(route, {}).values())

    @property
    def logins(self) -> int:
        return int(self.sim.counters["logins"]["succeeded"])

    def executions_started(self, sid: str) -> int:
        """Execute Package requests the simulator accepted for the server."""
        return int(self.sim.counters["executions_per_server"].get(sid, 0))

    def executions(self, sid: str) -> list[str]:
        """Execution ids on the server, oldest first."""
        return list(self.sim.servers[sid].executions)

    def execution(self, execution_id: str) -> dict:
        return self.admin.call("GET", "/_sim/state")["executions"][execution_id]

    def job_status(self, job_id: str) -> str:
        return str(self.admin.call("GET", "/_sim/state")["jobs"][job_id]["status"])

    def in_maintenance(self, sid: str) -> bool:
        return bool(self.admin.call("GET", "/_sim/state")["servers"][sid]["inMaintenanceMode"])

    def group_id(self, path: str) -> str:
        """The simulator's id of the group at ``VA1/Web``."""
        return self.sim.group_by_path[(ALIAS, path)]

    # --- acting on it ------------------------------------------------------------------------

    def fault(self, **spec: Any) -> dict:
        """Add one of the simulator's opt-in faults (``simulator/faults.py``)."""
        return self.admin.call("POST", "/_sim/faults", spec)

    def revoke_tokens(self) -> None:
        self.fault(kind="revoke_tokens")

    def settle(self, seconds: float = SETTLE_SECONDS) -> None:
        """Push the simulated clock ahead: every queued job lands, every execution that can completes."""
        self.admin.call("POST", "/_sim/clock/advance", {"seconds": seconds})

    def _operate(self, op: str, body: Any) -> list[dict]:
        token = self.admin.login(USER, PASSWORD)
        path = f"/v2/operations/{ALIAS}/servers/{op}"
        return list(self.admin.call("POST", path, body, token=token))

    def execute(self, ids: Iterable[str]) -> str:
        """Send the Linux patch package to the servers, as someone else would; returns the job id."""
        body = {"servers": list(ids), "package": {"packageId": LINUX_PACKAGE, "parameters": {}}}
        (job,) = {item["links"][0]["id"] for item in self._operate("executePackage", body)}
        return str(job)

    def start_maintenance(self, ids: Iterable[str]) -> str:
        (job,) = {item["links"][0]["id"] for item in self._operate("startMaintenance", list(ids))}
        return str(job)

    def run_to_completion(self, ids: Iterable[str]) -> dict[str, str]:
        """A finished patch run on each server before the test's own: ``{server: execution id}``."""
        ids = list(ids)
        self.execute(ids)
        self.settle()
        return {sid: self.executions(sid)[-1] for sid in ids}
