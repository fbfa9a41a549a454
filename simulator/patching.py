"""Patching-as-a-Service routes (real host ``patching.useast.appfog.ctl.io/rest``),
served here under ``/patching/rest``: the summary (§9.2) and detail (§9.3) reads."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from simulator.api_v2 import sim_of
from simulator.http_common import json_response

router = APIRouter()


@router.get("/patching/rest/servers/{alias}/server/{serverId}/patch")
async def patch_summary(alias: str, serverId: str, request: Request) -> Response:
    sim = sim_of(request)
    alias = sim.require_alias(sim.authenticate(request.headers.get("authorization")), alias)
    return json_response(sim.patch_summary(alias, serverId))


@router.get("/patching/rest/servers/{alias}/server/{serverId}/patch/{executionId}")
async def patch_detail(alias: str, serverId: str, executionId: str, request: Request) -> Response:
    sim = sim_of(request)
    alias = sim.require_alias(sim.authenticate(request.headers.get("authorization")), alias)
    return json_response(sim.patch_detail(alias, serverId, executionId))
