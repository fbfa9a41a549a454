"""Admin API under ``/_sim/`` (no token; never mixed with CLC paths): health, reset,
faults, counters, outbox, state dump, timeline, clock control and run-time settings."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from simulator.api_v2 import sim_of
from simulator.clock import iso
from simulator.errors import ApiError
from simulator.faults import FaultSpecError
from simulator.http_common import json_response, query_value, read_json
from simulator.timeline import timeline_view

router = APIRouter(prefix="/_sim")


def _bad(message: str) -> ApiError:
    return ApiError(400, {"message": message})


def _clock(sim) -> dict:
    now = sim.now()
    return {"now": iso(now), "epoch": now, "time_scale": sim.clock.time_scale}


@router.get("/health")
async def health(request: Request) -> Response:
    sim = sim_of(request)
    return json_response(
        {
            "status": "ok",
            "fleet": sim.fleet.source,
            "servers": len(sim.servers),
            "accounts": sorted(sim.accounts),
            "now": iso(sim.now()),
            "time_scale": sim.clock.time_scale,
            "persistent": sim.store is not None,
        }
    )


@router.post("/reset")
async def reset(request: Request) -> Response:
    sim = sim_of(request)
    sim.reset()
    return json_response({"status": "reset", "now": iso(sim.now())})


@router.get("/faults")
async def list_faults(request: Request) -> Response:
    return json_response({"faults": sim_of(request).faults.to_list()})


@router.post("/faults")
async def add_faults(request: Request) -> Response:
    sim = sim_of(request)
    body = await read_json(request)
    items = body if isinstance(body, list) else [body]
    created = []
    try:
        for item in items:
            created.append(sim.add_fault(item))
    except FaultSpecError as exc:
        raise _bad(f"invalid fault: {exc}") from None
    return json_response({"faults": created} if isinstance(body, list) else created[0], 201)


@router.delete("/faults")
async def clear_faults(request: Request) -> Response:
    sim = sim_of(request)
    removed = len(sim.faults.rules)
    sim.faults.clear()
    return json_response({"removed": removed})


@router.delete("/faults/{fault_id}")
async def delete_fault(fault_id: int, request: Request) -> Response:
    if not sim_of(request).faults.remove(fault_id):
        raise ApiError(404, {"message": f"no fault with id {fault_id}"})
    return json_response({"removed": 1})


@router.get("/counters")
async def counters(request: Request) -> Response:
    return json_response(sim_of(request).counters)


@router.get("/outbox")
async def outbox(request: Request) -> Response:
    sim = sim_of(request)
    mails = sim.outbox
    for key in ("server", "execution_id", "kind"):
        wanted = query_value(request, key)
        if wanted:
            mails = [m for m in mails if str(m.get(key, "")).lower() == wanted.lower()]
    return json_response({"emails": mails})


@router.get("/state")
async def state(request: Request) -> Response:
    return json_response(sim_of(request).state_view())


@router.get("/timeline")
async def timeline(request: Request) -> Response:
    """Per server: its executions and maintenance intervals, as the simulator applied them."""
    sim = sim_of(request)
    return json_response(timeline_view(sim, query_value(request, "server") or None))


@router.get("/clock")
async def get_clock(request: Request) -> Response:
    return json_response(_clock(sim_of(request)))


@router.post("/clock/advance")
async def advance_clock(request: Request) -> Response:
    sim = sim_of(request)
    body = await read_json(request)
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise _bad('body must be {"seconds": <number >= 0>}')
    sim.clock.advance(seconds)
    sim.advance()
    sim.commit()
    return json_response(_clock(sim))


@router.post("/clock/scale")
async def scale_clock(request: Request) -> Response:
    sim = sim_of(request)
    body = await read_json(request)
    scale = body.get("time_scale") if isinstance(body, dict) else None
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0:
        raise _bad('body must be {"time_scale": <number > 0>}')
    sim.clock.set_scale(scale)
    sim.commit()
    return json_response(_clock(sim))


_SETTINGS: dict[str, type | tuple[type, ...]] = {
    "shuffle_batch_order": bool,
    "strict_package_os": bool,
    "queue_delay": (int, float),
}


@router.get("/config")
async def get_config(request: Request) -> Response:
    sim = sim_of(request)
    return json_response({k: getattr(sim.settings, k) for k in _SETTINGS})


@router.post("/config")
async def set_config(request: Request) -> Response:
    sim = sim_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object")
    for key, value in body.items():
        kind = _SETTINGS.get(key)
        if kind is None:
            raise _bad(f"{key}: unknown setting (known: {', '.join(_SETTINGS)})")
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise _bad(f"{key}: wrong type {type(value).__name__}")
    for key, value in body.items():
        setattr(sim.settings, key, value)
    sim.commit()
    return json_response({k: getattr(sim.settings, k) for k in _SETTINGS})
