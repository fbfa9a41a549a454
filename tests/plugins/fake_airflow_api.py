"""A loopback stand-in for Airflow's public REST API: login and DAG-run notes only.

Checks what the real api-server checks for these calls (a bearer token from ``/auth/token``,
``update_mask=note``, the note's length) and records every note written, in order.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from launcher.env import airflow_api_connection

TOKEN = "fake-airflow-api-token-1234567890"


class FakeAirflowApi:
    def __init__(self, username: str = "patchflow", password: str = "patchflow-pass") -> None:
        self.username, self.password = username, password
        self.notes: dict[tuple[str, str], str | None] = {}
        self.written: list[str] = []
        self.logins = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeAirflowApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def connection(self) -> str:
        host, port = self._server.server_address[:2]
        return airflow_api_connection(f"http://{host}:{port}", login=self.username, password=self.password)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"null")

            def _send(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _run_key(self) -> tuple[str, str] | None:
                parts = urlsplit(self.path).path.split("/")
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, {"detail": "Not authenticated"})
                    return None
                if len(parts) != 7 or parts[1:4] != ["api", "v2", "dags"] or parts[5] != "dagRuns":
                    self._send(404, {"detail": "Not Found"})
                    return None
                return unquote(parts[4]), unquote(parts[6])

            def do_POST(self) -> None:
                body = self._body()
                if self.path == "/auth/token" and body == {
                    "username": api.username,
                    "password": api.password,
                }:
                    api.logins += 1
                    self._send(201, {"access_token": TOKEN})
                else:
                    self._send(401, {"detail": "Invalid credentials"})

            def do_GET(self) -> None:
                key = self._run_key()
                if key is not None:
                    self._send(200, {"dag_id": key[0], "dag_run_id": key[1], "note": api.notes.get(key)})

            def do_PATCH(self) -> None:
                key = self._run_key()
                if key is None:
                    return
                body = self._body()
                if parse_qs(urlsplit(self.path).query).get("update_mask") != ["note"] or set(body) != {
                    "note"
                }:
                    self._send(400, {"detail": "only the note may be changed"})
                elif len(body["note"]) > 1000:
                    self._send(422, {"detail": "note too long"})
                else:
                    api.notes[key] = body["note"]
                    api.written.append(body["note"])
                    self._send(200, {"dag_id": key[0], "dag_run_id": key[1], "note": body["note"]})

        return Handler
