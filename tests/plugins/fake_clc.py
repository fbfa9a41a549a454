"""A small, stateful, in-process fake of the CLC v2 API + patching service for unit tests.

Real HTTP on 127.0.0.1 (stdlib ``ThreadingHTTPServer``), so the sync and async hooks are
exercised end to end. Progress is driven by polls rather than time: a queue job advances one
status per GET, and an execution completes after ``summary_polls_to_complete`` summary GETs.
Faults are queued with ``fail_next``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ALIAS = "DEMO"
USER = "demo.admin"
PASSWORD = "demo-password-xyz"


def make_jwt(exp: float, nbf: float | None = None) -> str:
    def enc(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"exp": int(exp), "unique_name": USER} | ({"nbf": int(nbf)} if nbf is not None else {})
    return f"{enc({'typ': 'JWT', 'alg': 'HS256'})}.{enc(claims)}.c2lnbmF0dXJl"


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Fault:
    method: str
    pattern: str
    status: int | None = 500
    body: Any = None
    headers: dict = field(default_factory=dict)
    times: int = 1
    after: bool = False
    """Process the request first, then answer with the fault (lost answer)."""
    drop: bool = False
    """Close the connection without any answer."""


class FakeClc:
    def __init__(self, servers: dict[str, dict] | None = None) -> None:
        self.lock = threading.RLock()
        self.servers: dict[str, dict] = {}
        for sid, spec in (servers or {}).items():
            self.add_server(sid, **spec)
        self.jobs: dict[str, list[str]] = {}
        self.executions: dict[str, list[dict]] = {}
        self.patches: dict[str, list[tuple[str, str, str]]] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, str | None]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.execute_calls: Counter[str] = Counter()
        self.execute_bodies: list[dict] = []
        self.logins = 0
        self.token_ttl = 14 * 24 * 3600
        self.api_clock_offset = 0.0
        """Seconds the API's clock is ahead of ours (negative: behind): token claims, execution times."""
        self.valid_tokens: set[str] = set()
        self.summary_polls_to_complete = 2
        self.job_script = ["notStarted", "executing", "succeeded"]
        self.initiations = 2
        self.refuse_when_pending = True
        self.execution_start_delay = 0.0
        """Seconds after the request before a new execution shows in the summary (a busy queue)."""
        self._job_seq = 1000
        self._exec_seq = 5000
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    # ---- lifecycle
    def start(self) -> FakeClc:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def conn_json(self, **extra: Any) -> str:
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

    # ---- fleet
    def add_server(
        self,
        sid: str,
        dc: str = "va1",
        group: str = "Web",
        os: str = "centOS6_64Bit",
        maintenance: bool = False,
    ) -> None:
        self.servers[sid.lower()] = {
            "id": sid.lower(),
            "name": sid.upper(),
            "os": os,
            "osType": os,
            "status": "active",
            "groupId": f"g-{dc}-{group.lower()}",
            "locationId": dc.upper(),
            "isTemplate": False,
            "details": {"inMaintenanceMode": maintenance, "powerState": "started"},
            "_dc": dc,
            "_group": group,
        }

    def fail_next(self, method: str, pattern: str, status: int | None = 500, **kw: Any) -> None:
        self.faults.append(Fault(method, pattern, status, **kw))

    def in_maintenance(self, sid: str) -> bool:
        return self.servers[sid]["details"]["inMaintenanceMode"]

    def add_execution(
        self,
        sid: str,
        *,
        start: datetime,
        status: str = "completed",
        execution_id: str | None = None,
        initiations: int = 1,
        visible_after: float = 0.0,
    ) -> dict:
        self._exec_seq += 1
        ex = {
            "execution_id": execution_id or f"VA1-{self._exec_seq}",
            "status": status,
            "start_time": iso(start),
            "end_time": iso(start + timedelta(minutes=5)) if status == "completed" else "",
            "init_messages": [
                {
                    "start_time": iso(start),
                    "end_time": "",
                    "init_begin_message": "Invoking yum check-update",
                    "init_end_message": "Installed 0 updates"
                    if i == initiations - 1
                    else "Installed 2 updates",
                }
                for i in range(initiations)
            ],
            "_polls_left": 0 if status == "completed" else self.summary_polls_to_complete,
            "_visible_at": datetime.now(UTC) + timedelta(seconds=visible_after),
        }
        self.executions.setdefault(sid, []).append(ex)
        return ex

    # ---- HTTP
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                path = self.path
                with fake.lock:
                    fake.requests.append((method, path, self.headers.get("Authorization")))
                    fake.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
                    fault = next(
                        (
                            f
                            for f in fake.faults
                            if f.method == method and re.search(f.pattern, path) and f.times > 0
                        ),
                        None,
                    )
                    if fault:
                        fault.times -= 1
                        if not fault.after:
                            return self._fault(fault)
                    status, out, headers = fake.route(method, path, body, self.headers.get("Authorization"))
                if fault:
                    return self._fault(fault)
                self._send(status, out, headers)

            def _fault(self, fault: Fault) -> None:
                if fault.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                self._send(fault.status or 500, fault.body, fault.headers)

            def _send(self, status: int, out: Any, headers: dict | None = None) -> None:
                data = b"" if out is None else json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler

    def route(self, method: str, path: str, body: Any, auth: str | None) -> tuple[int, Any, dict]:
        plain = path.split("?", 1)[0]
        if method == "POST" and plain == "/v2/authentication/login":
            if body != {"username": USER, "password": PASSWORD}:
                return 400, {"message": "We didn't recognize the username or password you entered."}, {}
            self.logins += 1
            issued = datetime.now(UTC).timestamp() + self.api_clock_offset
            token = make_jwt(issued + self.token_ttl, nbf=issued) + f"x{self.logins}"
            self.valid_tokens.add(token)
            return 200, {"userName": USER, "accountAlias": ALIAS, "bearerToken": token}, {}
        if not auth or auth.removeprefix("Bearer ") not in self.valid_tokens:
            return 401, {"message": "Authorization has been denied for this request."}, {}
        m = re.match(r"^/(v2|patching/rest)/(\w+)/([^/]+)(?:/(.*))?$", plain)
        if not m:
            return 404, {"message": "The requested resource does not exist."}, {}
        root, kind, alias, rest = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        if alias.upper() != ALIAS:
            return 403, {"message": "forbidden alias"}, {}
        if root == "patching/rest":
            return self._patching(rest)
        if kind == "datacenters":
            return self._datacenters(rest)
        if kind == "groups":
            return self._group(rest)
        if kind == "servers" and method == "GET":
            s = self.servers.get(rest.lower())
            return (200, self._public(s), {}) if s else (404, None, {})
        if kind == "operations" and rest.startswith("status/"):
            job = rest.split("/", 1)[1]
            if job not in self.jobs:
                return 404, {"message": "The requested resource does not exist."}, {}
            script = self.jobs[job]
            status = script.pop(0) if len(script) > 1 else script[0]
            return 200, {"status": status}, {}
        if kind == "operations" and method == "POST" and rest.startswith("servers/"):
            return self._operation(rest.split("/", 1)[1], body)
        return 404, {"message": "The requested resource does not exist."}, {}

    @staticmethod
    def _public(s: dict) -> dict:
        return {k: v for k, v in s.items() if not k.startswith("_")}

    def _new_job(self, script: list[str]) -> str:
        self._job_seq += 1
        job = f"va1-{self._job_seq}"
        self.jobs[job] = list(script)
        return job

    def _operation(self, op: str, body: Any) -> tuple[int, Any, dict]:
        ids = body["servers"] if op == "executePackage" else body
        job = self._new_job(self.job_script if op == "executePackage" else ["executing", "succeeded"])
        out = []
        for sid in ids:
            s = self.servers.get(sid.lower())
            if s is None:
                out.append({"server": sid.lower(), "isQueued": False, "errorMessage": "not found"})
                continue
            if op in ("startMaintenance", "stopMaintenance"):
                want = op == "startMaintenance"
                if s["details"]["inMaintenanceMode"] == want:
                    out.append({"server": s["id"], "isQueued": False})
                    continue
                s["details"]["inMaintenanceMode"] = want
            elif op == "executePackage":
                self.execute_calls[s["id"]] += 1
                self.execute_bodies.append(body)
                pending = [e for e in self.executions.get(s["id"], []) if e["status"] == "pending"]
                if pending and self.refuse_when_pending:
                    out.append(
                        {
                            "server": s["id"],
                            "isQueued": False,
                            "errorMessage": "A patch execution is already pending on this server.",
                        }
                    )
                    continue
                self.add_execution(
                    s["id"],
                    start=datetime.now(UTC)
                    + timedelta(seconds=self.api_clock_offset + self.execution_start_delay),
                    status="pending",
                    initiations=self.initiations,
                    visible_after=self.execution_start_delay,
                )
            link = {"rel": "status", "href": f"/v2/operations/demo/status/{job}", "id": job}
            out.append({"server": s["id"], "isQueued": True, "links": [link]})
        return (200 if any(o["isQueued"] for o in out) else 400), out, {}

    def _patching(self, rest: str) -> tuple[int, Any, dict]:
        m = re.match(r"^server/([^/]+)/patch(?:/([^/]+))?$", rest)
        if not m:
            return 404, {"message": "nope"}, {}
        sid = m.group(1).lower()
        now = datetime.now(UTC)
        executions = [e for e in self.executions.get(sid, []) if e["_visible_at"] <= now]
        if m.group(2) is None:
            for ex in executions:
                if ex["status"] == "pending":
                    ex["_polls_left"] -= 1
                    if ex["_polls_left"] <= 0:
                        ex["status"] = "completed"
                        ex["end_time"] = iso(datetime.now(UTC))
            return 200, [{k: v for k, v in e.items() if not k.startswith("_")} for e in executions], {}
        ex = next((e for e in executions if e["execution_id"] == m.group(2)), None)
        if ex is None:
            return 404, {"message": "unknown execution"}, {}
        patches = self.patches.get(sid, [("Security Update (KB3138615)", "2", "completed")])
        return (
            200,
            {
                "execution_id": ex["execution_id"],
                "status": ex["status"],
                "start_time": ex["start_time"],
                "end_time": ex["end_time"],
                "duration": "5 min 0 sec",
                "begin_message": "Update Process BEGIN",
                "end_message": "Updating Complete",
                "patches": [
                    {
                        "start_time": ex["start_time"],
                        "end_time": ex["end_time"],
                        "patch_begin_message": n,
                        "patch_end_message": c,
                        "status": st,
                    }
                    for n, c, st in patches
                ],
            },
            {},
        )

    def _datacenters(self, rest: str) -> tuple[int, Any, dict]:
        dcs = sorted({s["_dc"] for s in self.servers.values()})
        if not rest:
            return 200, [{"id": dc, "name": dc.upper(), "links": []} for dc in dcs], {}
        dc = rest.lower()
        if dc not in dcs:
            return 404, {"message": "The requested resource does not exist."}, {}
        return (
            200,
            {
                "id": dc,
                "name": dc.upper(),
                "links": [
                    {"rel": "self", "href": f"/v2/datacenters/demo/{dc}"},
                    {"rel": "group", "href": f"/v2/groups/demo/root-{dc}", "id": f"root-{dc}"},
                ],
            },
            {},
        )

    def _group(self, rest: str) -> tuple[int, Any, dict]:
        gid = rest.lower()
        if gid.startswith("root-"):
            dc = gid[5:]
            names = sorted({s["_group"] for s in self.servers.values() if s["_dc"] == dc})
            children = [self._leaf(dc, n) for n in names]
            return (
                200,
                {
                    "id": gid,
                    "name": f"{dc.upper()} Hardware",
                    "locationId": dc.upper(),
                    "groups": [
                        {
                            "id": f"dg-{dc}",
                            "name": "Default Group",
                            "groups": children,
                            "servers": [],
                            "locationId": dc.upper(),
                        }
                    ],
                    "servers": [],
                },
                {},
            )
        m = re.match(r"^g-(\w+)-(.+)$", gid)
        if m:
            return (
                200,
                self._leaf(
                    m.group(1), next(s["_group"] for s in self.servers.values() if s["groupId"] == gid)
                ),
                {},
            )
        return 404, {"message": "The requested resource does not exist."}, {}

    def _leaf(self, dc: str, name: str) -> dict:
        members = [self._public(s) for s in self.servers.values() if s["_dc"] == dc and s["_group"] == name]
        return {
            "id": f"g-{dc}-{name.lower()}",
            "name": name,
            "locationId": dc.upper(),
            "groups": [],
            "servers": members,
        }
