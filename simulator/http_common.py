"""Shared HTTP plumbing: JSON responses, case-insensitive query/body keys, JSON and form
request bodies, and the ASGI middleware that advances the clock, injects faults, stamps the
simulated ``Date`` and counts requests per route."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from email.utils import formatdate
from enum import StrEnum
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from simulator.errors import ApiError, invalid
from simulator.faults import FaultKind, GarbageBody
from simulator.form_body import FormBodyError, decode_form

JSON_MEDIA = "application/json; charset=utf-8"
FORM_MEDIA = "application/x-www-form-urlencoded"
#: what the ``garbage`` fault's ``html`` body looks like: a page from something in between
PROXY_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Gateway notice</title></head>"
    "<body><h1>Gateway notice</h1><p>The page you requested is temporarily unavailable "
    "through this gateway. Please try again later.</p></body></html>\n"
)
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


class BodyMedia(StrEnum):
    """How a request body was encoded (both bind the same models, as in ASP.NET Web API)."""

    JSON = "json"
    FORM = "form"


@dataclass(frozen=True)
class RequestBody:
    """A parsed request body: JSON-like ``data`` (None when empty) and how it came."""

    data: Any
    media: BodyMedia

    @property
    def from_form(self) -> bool:
        return self.media == BodyMedia.FORM


def _media_of(request: Request) -> BodyMedia:
    """JSON (any case, any parameters, ``+json`` suffixes, or no header) or form; else 415."""
    ctype = request.headers.get("content-type")
    if not ctype:
        return BodyMedia.JSON
    media = ctype.split(";")[0].strip().lower()
    if media in ("application/json", "text/json") or media.endswith("+json"):
        return BodyMedia.JSON
    if media == FORM_MEDIA:
        return BodyMedia.FORM
    raise ApiError(
        415,
        {"message": f"The request entity's media type '{media}' is not supported for this resource."},
    )


async def read_body(request: Request) -> RequestBody:
    """Parse a CLC request body, JSON or form-encoded (reference §12 #33)."""
    media = _media_of(request)
    raw = await request.body()
    if not raw.strip():
        return RequestBody(None, media)
    if media == BodyMedia.FORM:
        try:
            return RequestBody(decode_form(raw), media)
        except FormBodyError as exc:
            raise invalid("request", str(exc)) from None
    try:
        return RequestBody(json.loads(raw), media)
    except ValueError:
        raise invalid("request", "The request body is not valid JSON.") from None


async def read_json(request: Request) -> Any:
    """Parse a JSON body (admin API); media types compared case-insensitively; 415 for others."""
    body = await read_body(request)
    if body.from_form:
        raise ApiError(415, {"message": "The admin API takes JSON bodies only."})
    return body.data


@dataclass
class CapturedResponse:
    """What the application answered, held back so that a fault can cut or replace it."""

    status: int = 500
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


async def buffer_request_body(receive):
    """Read the whole request body now and return a ``receive`` that replays it.

    A real server that has received a request carries it out even if the client goes
    away while it waits (the ``latency`` fault): without this, the ASGI server would answer
    the app's later ``receive()`` with ``http.disconnect`` and the request would be lost.
    """
    chunks: list[bytes] = []
    complete = False
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client left before the body was complete: nothing to carry out
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            complete = True
            break
    replayed = False

    async def replay():
        nonlocal replayed
        if complete and not replayed:
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        if not complete:
            return {"type": "http.disconnect"}
        return await receive()

    return replay


def _with_header(headers: list[tuple[bytes, bytes]], name: bytes, value: bytes) -> list:
    return [(k, v) for k, v in headers if k.lower() != name] + [(name, value)]


def sim_date(sim) -> bytes:
    """The HTTP ``Date`` header on the simulated clock, as a real API with that clock sends it."""
    return formatdate(sim.now(), usegmt=True).encode()


def cut_connection(send) -> bool:
    """Close the client connection without (more of) a response; False in process (no socket)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if cycle is None or transport is None:
        return False
    cycle.disconnected = True  # tell uvicorn not to answer; then cut the connection
    transport.close()
    return True


def garbage_payload(kind: GarbageBody, real: CapturedResponse | None) -> tuple[bytes, str]:
    """(body, media type) that a ``garbage`` fault sends instead of the real answer."""
    if kind == GarbageBody.HTML:
        return PROXY_PAGE.encode(), "text/html; charset=utf-8"
    if kind == GarbageBody.EMPTY:
        return b"", JSON_MEDIA
    real_is_array = real is not None and real.body.lstrip().startswith(b"[")
    wrong = [{"message": "OK"}] if not real_is_array and real is not None else {"message": "OK"}
    return json.dumps(wrong).encode(), JSON_MEDIA


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
        receive = await buffer_request_body(receive)
        dated = self._dated_send(send, sim)
        inj = None
        if sim.faults.rules and not scope["path"].startswith(("/_sim", "/health/")):
            inj = sim.faults.for_request(method, route)
            if inj.rule_ids:
                sim.count_fault(inj.rule_ids)
            if inj.latency_ms:
                await asyncio.sleep(inj.latency_ms / 1000)
            if inj.status is not None:
                headers = {"Retry-After": str(inj.retry_after)} if inj.retry_after is not None else None
                body = SERVER_ERROR_BODY.get(inj.status, {"message": "Too many requests."})
                sim.count_request(route_key, inj.status)
                await json_response(body, inj.status, headers)(scope, receive, dated)
                return
        fault = inj.response if inj is not None else None
        if fault is None:
            await self._answer(scope, receive, dated, sim, route_key)
        elif fault.kind == FaultKind.DROP:
            await self._drop(scope, receive, send, sim, route_key)
        elif fault.kind == FaultKind.TRUNCATE:
            await self._truncate(scope, receive, send, dated, sim, route_key, fault)
        else:
            await self._garbage(scope, receive, dated, sim, route_key, fault)

    @staticmethod
    def _dated_send(send, sim):
        async def dated(message):
            if message["type"] == "http.response.start":
                headers = _with_header(list(message.get("headers", [])), b"date", sim_date(sim))
                message = {**message, "headers": headers}
            await send(message)

        return dated

    async def _answer(self, scope, receive, send, sim, route_key: str) -> None:
        status: list[int] = []

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, counting_send)
        sim.count_request(route_key, status[0] if status else 500)

    async def _capture(self, scope, receive) -> CapturedResponse:
        captured = CapturedResponse()
        body: list[bytes] = []

        async def keep(message):
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                captured.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await self.app(scope, receive, keep)
        captured.body = b"".join(body)
        return captured

    async def _drop(self, scope, receive, send, sim, route_key: str) -> None:
        """Carry the request out, then close the connection without any answer."""
        captured = await self._capture(scope, receive)
        sim.count_request(route_key, captured.status)
        if not cut_connection(send):
            raise LostResponse(f"{route_key}: response dropped by fault injection")

    async def _truncate(self, scope, receive, raw_send, send, sim, route_key: str, fault) -> None:
        """Carry the request out; send its status and headers but only part of its body."""
        captured = await self._capture(scope, receive)
        sim.count_request(route_key, captured.status)
        full = captured.body
        sent = full[: min(max(len(full) - 1, 0), int(len(full) * fault.keep))]
        if fault.cut_connection:  # the full length is announced, the connection dies mid-body
            start = {"type": "http.response.start", "status": captured.status, "headers": captured.headers}
            await send(start)
            await send({"type": "http.response.body", "body": sent, "more_body": True})
            if not cut_connection(raw_send):
                raise LostResponse(f"{route_key}: response cut after {len(sent)} of {len(full)} bytes")
            return
        headers = _with_header(captured.headers, b"content-length", str(len(sent)).encode())
        await send({"type": "http.response.start", "status": captured.status, "headers": headers})
        await send({"type": "http.response.body", "body": sent, "more_body": False})

    async def _garbage(self, scope, receive, send, sim, route_key: str, fault) -> None:
        """Answer with a non-JSON or wrong-shape body, after carrying the request out or not."""
        real = await self._capture(scope, receive) if fault.processed else None
        body, media = garbage_payload(fault.body, real)
        sim.count_request(route_key, fault.status)
        response = Response(body, status_code=fault.status, media_type=media, headers=NO_CACHE)
        await response(scope, receive, send)
