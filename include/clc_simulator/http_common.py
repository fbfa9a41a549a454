"""Shared HTTP plumbing: JSON responses, case-insensitive query/body keys, the ASGI
middleware that advances the clock, injects faults and counts requests per route."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from include.clc_simulator.errors import ApiError, invalid

JSON_MEDIA = "application/json; charset=utf-8"
NO_CACHE = {"Cache-Control": "no-cache", "Pragma": "no-cache", "Expires": "-1"}
SERVER_ERROR_BODY = {
    500: {"message": "An error has occurred."},
    503: {"message": "The service is unavailable."},
}


class LostResponse(ConnectionError):
    """Raised in-process (no socket to close) when a ``drop`` fault swallowed the response."""


def json_response(
    payload: Any, status: int = 200, headers: dict | None = None, raw: str | None = None
) -> Response:
    text = raw if raw is not None else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(
        text.encode(), status_code=status, media_type=JSON_MEDIA, headers={**NO_CACHE, **(headers or {})}
    )


def error_response(exc: ApiError) -> Response:
    if exc.body is None:
        return Response(b"", status_code=exc.status, headers=NO_CACHE)
    return json_response(exc.body, exc.status)


def query_value(request: Request, name: str) -> str | None:
    """Query parameter by case-insensitive name (``groupLinks`` = ``GroupLinks``)."""
    wanted = name.lower()
    for key, value in request.query_params.multi_items():
        if key.lower() == wanted:
            return value
    return None


def query_flag(request: Request, name: str) -> bool:
    value = query_value(request, name)
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def ci_get(data: dict, name: str, default: Any = None) -> Any:
    """Body key by case-insensitive name (ASP.NET/Json.NET model binding ignores case)."""
    if name in data:
        return data[name]
    wanted = name.lower()
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value
    return default


async def read_json(request: Request) -> Any:
    """Parse a JSON body; media types are compared case-insensitively; 415 for non-JSON."""
    ctype = request.headers.get("content-type")
    if ctype:
        media = ctype.split(";")[0].strip().lower()
        if media not in ("application/json", "text/json") and not media.endswith("+json"):
            raise ApiError(
                415,
                {"message": f"The request entity's media type '{media}' is not supported for this resource."},
            )
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid("request", "The request body is not valid JSON.") from None


class SimMiddleware:
    """Pure ASGI middleware (cheap): advance state, apply faults, count per route template."""

    def __init__(self, app, state):
        self.app = app
        self.state = state  # object with .sim (swapped by tests) and .routes
        self._route_cache: dict[tuple[str, str], str] = {}

    def _route_of(self, scope) -> str:
        key = (scope["method"], scope["path"])
        cached = self._route_cache.get(key)
        if cached is not None:
            return cached
        template = "<unmatched>"
        partial = None
        for route in self.state.routes():
            match, _ = route.matches(scope)
            if match == Match.FULL:
                template = route.path
                break
            if match == Match.PARTIAL and partial is None:
                partial = route.path
        else:
            if partial is not None:
                template = partial
        if len(self._route_cache) > 50_000:
            self._route_cache.clear()
        self._route_cache[key] = template
        return template

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sim = self.state.sim
        method = scope["method"]
        route = self._route_of(scope)
        route_key = f"{method} {route}"
        sim.advance()
        inj = None
        if sim.faults.rules and not scope["path"].startswith("/_sim"):
            inj = sim.faults.for_request(method, route)
            if inj.rule_ids:
                sim.count_fault(inj.rule_ids)
            if inj.latency_ms:
                await asyncio.sleep(inj.latency_ms / 1000)
            if inj.status is not None:
                headers = {"Retry-After": str(inj.retry_after)} if inj.retry_after is not None else None
                body = SERVER_ERROR_BODY.get(inj.status, {"message": "Too many requests."})
                sim.count_request(route_key, inj.status)
                await json_response(body, inj.status, headers)(scope, receive, send)
                return
        status: list[int] = []
        if inj is not None and inj.drop:

            async def swallow(message):
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            await self.app(scope, receive, swallow)
            sim.count_request(route_key, status[0] if status else 500)
            cycle = getattr(send, "__self__", None)
            transport = getattr(cycle, "transport", None)
            if transport is None:
                raise LostResponse(f"{route_key}: response dropped by fault injection")
            cycle.disconnected = True  # tell uvicorn not to answer; then cut the connection
            transport.close()
            return

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, counting_send)
        sim.count_request(route_key, status[0] if status else 500)
