"""A small HTTP client for the simulator's admin API and the few CLC calls tests make themselves."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


class SimulatorClient:
    """Admin and CLC calls the tests make to check what really happened on the 'cloud'."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def reset(self) -> None:
        self.call("POST", "/_sim/reset")

    def counters(self) -> dict:
        return self.call("GET", "/_sim/counters")

    def fault(self, **spec: Any) -> None:
        self.call("POST", "/_sim/faults", spec)

    def login(self, user: str, password: str) -> str:
        return self.call("POST", "/v2/authentication/login", {"username": user, "password": password})[
            "bearerToken"
        ]

    def server(self, alias: str, server_id: str, token: str) -> dict:
        return self.call("GET", f"/v2/servers/{alias}/{server_id}", token=token)
