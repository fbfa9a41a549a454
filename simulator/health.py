"""``GET /health/{server}``: each server's own health endpoint, as a load balancer would probe it.

Not part of the CLC API: it stands for the service running *on* the server (no token, no
faults, not counted per route by the fault rules). 200 ``{"status": "healthy"}`` while the
server is active, powered on and not broken by a patch; otherwise 503 ``{"status":
"unhealthy", "reason": …}`` (see ``Simulator.health``). An unknown server is 404. A fleet
points clients at it with a custom field such as ``healthUrl: "{simulator}/health/va1demodb01"``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from simulator.http_common import json_response

router = APIRouter()


@router.get("/health/{server_id}")
async def server_health(server_id: str, request: Request) -> Response:
    sim = request.app.state.holder.sim
    server = sim.servers.get(server_id.strip().lower())
    if server is None:
        return json_response({"message": "The requested resource does not exist."}, 404)
    healthy, reason = sim.health(server, sim.now())
    if healthy:
        return json_response({"status": "healthy", "server": server.id})
    return json_response({"status": "unhealthy", "server": server.id, "reason": reason}, 503)
