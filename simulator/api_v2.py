"""CLC API v2 routes (``/v2/...``): translate requests to Simulator calls, render §2-§10 shapes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from simulator import views
from simulator.core import Simulator
from simulator.errors import ApiError, invalid, not_found
from simulator.http_common import (
    RequestBody,
    ci_get,
    json_response,
    query_flag,
    query_value,
    read_body,
)
from simulator.oscatalog import PACKAGES

router = APIRouter()


def sim_of(request: Request) -> Simulator:
    return request.app.state.holder.sim


def _batch(results: list[dict], queued: bool) -> Response:
    """200 when at least one server was queued, else 400 with the same array (§6.1)."""
    return json_response(results, 200 if queued else 400)


#: names under which a form body may carry the bare id array of the power/maintenance operations
_FORM_ID_FIELDS = ("serverids", "servers", "ids")


def _form_list(value):
    """A form cannot tell one value from a list of one: a single string is a list of one."""
    return [value] if isinstance(value, str) else value


def _bare_id_array(body: RequestBody):
    """The id array of an array-bodied operation: the JSON array itself, or from a form
    ``=A&=B`` / ``[]=A`` / ``[0]=A`` or a single field ``serverIds``/``servers``/``ids``."""
    if not body.from_form or not isinstance(body.data, dict):
        return _form_list(body.data) if body.from_form else body.data
    keys = list(body.data)
    if len(keys) != 1 or keys[0].lower() not in _FORM_ID_FIELDS:
        raise invalid("serverIds", "A form body carries the ids as =ID&=ID, []=ID or serverIds=ID.")
    return _form_list(body.data[keys[0]])


def _server_id_list(body, field: str = "serverIds") -> list[str]:
    if not isinstance(body, list) or not body:
        raise invalid(field, "A non-empty array of server ids is required.")
    if not all(isinstance(x, str) and x.strip() for x in body):
        raise invalid(field, "Every server id must be a non-empty string.")
    return [x.strip() for x in body]


# ------------------------------------------------------------------------------ login
@router.post("/v2/authentication/login")
async def login(request: Request) -> Response:
    sim = sim_of(request)
    body = (await read_body(request)).data
    if not isinstance(body, dict):
        raise invalid("request", "A JSON object with username and password is required.")
    username, password = ci_get(body, "username"), ci_get(body, "password")
    if not isinstance(username, str) or not username:
        raise invalid("username", "The username field is required.")
    if not isinstance(password, str) or not password:
        raise invalid("password", "The password field is required.")
    return json_response(sim.login(username, password))


# ------------------------------------------------------------------------------ accounts
@router.get("/v2/accounts/{alias}")
async def get_account(alias: str, request: Request) -> Response:
    """The account the ``account`` links point at (reference §12 #35)."""
    sim = sim_of(request)
    alias = sim.require_alias(sim.authenticate(request.headers.get("authorization")), alias)
    return json_response(views.account_dict(sim.accounts[alias]))


# ------------------------------------------------------------------------------ data centers
@router.get("/v2/datacenters/{alias}")
async def list_datacenters(alias: str, request: Request) -> Response:
    sim = sim_of(request)
    alias = sim.require_alias(sim.authenticate(request.headers.get("authorization")), alias)
    links = query_flag(request, "groupLinks")
    return json_response([views.datacenter_dict(sim, alias, dc, links) for dc in sim.fleet.data_centers])


@router.get("/v2/datacenters/{alias}/{dataCenter}")
async def get_datacenter(alias: str, dataCenter: str, request: Request) -> Response:
    sim = sim_of(request)
    alias = sim.require_alias(sim.authenticate(request.headers.get("authorization")), alias)
    dc = dataCenter.upper()
    if dc not in sim.fleet.data_centers:
        raise not_found()
    return json_response(views.datacenter_dict(sim, alias, dc, query_flag(request, "groupLinks")))


# ------------------------------------------------------------------------------ groups & servers
@router.get("/v2/groups/{alias}/{groupId}")
async def get_group(alias: str, groupId: str, request: Request) -> Response:
    sim = sim_of(request)
    alias = sim.require_alias(sim.authenticate(request.headers.get("authorization")), alias)
    group = sim.groups.get(groupId.lower())
    if group is None or group.account != alias:
        raise not_found()
    detail = (query_value(request, "serverDetail") or "").strip().lower() == "detailed"
    return json_response(None, raw=_with_base(views.group_json(sim, group, detail, sim.now()), request))


@router.get("/v2/servers/{alias}/{serverId}")
async def get_server(alias: str, serverId: str, request: Request) -> Response:
    sim = sim_of(request)
    alias = sim.require_alias(sim.authenticate(request.headers.get("authorization")), alias)
    if query_flag(request, "uuid"):
        server = sim.servers_by_uuid.get(serverId.lower())
        server = server if server is not None and server.account == alias else None
    else:
        server = sim.server_in(alias, serverId)
    if server is None:
        raise not_found(empty=True)  # real API: 404 with an empty body (§1.5)
    return json_response(None, raw=_with_base(views.server_json(sim, server, sim.now()), request))


def _with_base(text: str, request: Request) -> str:
    """``{simulator}`` in a custom field's value becomes this simulator's base URL (a health URL)."""
    if "{simulator}" not in text:
        return text
    return text.replace("{simulator}", str(request.base_url).rstrip("/"))


# ------------------------------------------------------------------------------ operations
def _make_power_route(op: str):
    async def handler(alias: str, request: Request) -> Response:
        sim = sim_of(request)
        principal = sim.authenticate(request.headers.get("authorization"))
        alias = sim.require_alias(principal, alias, operate=True)
        ids = _server_id_list(_bare_id_array(await read_body(request)))
        return _batch(*sim.server_operation(principal, alias, op, ids))

    handler.__name__ = f"op_{op}"
    return handler


for _op in (
    "powerOn",
    "powerOff",
    "shutDown",
    "reboot",
    "reset",
    "pause",
    "startMaintenance",
    "stopMaintenance",
):
    router.add_api_route(f"/v2/operations/{{alias}}/servers/{_op}", _make_power_route(_op), methods=["POST"])


@router.post("/v2/operations/{alias}/servers/setMaintenance")
async def set_maintenance(alias: str, request: Request) -> Response:
    sim = sim_of(request)
    principal = sim.authenticate(request.headers.get("authorization"))
    alias = sim.require_alias(principal, alias, operate=True)
    body = await read_body(request)
    servers = ci_get(body.data, "servers") if isinstance(body.data, dict) else None
    if body.from_form and isinstance(servers, dict):
        servers = [servers]  # "servers[id]=A&servers[inMaintenanceMode]=true"
    if not isinstance(servers, list) or not servers:
        raise invalid("servers", "A non-empty array of {id, inMaintenanceMode} objects is required.")
    values: dict[str, bool] = {}
    for i, item in enumerate(servers):
        sid = ci_get(item, "id") if isinstance(item, dict) else None
        raw = ci_get(item, "inMaintenanceMode") if isinstance(item, dict) else None
        if not isinstance(sid, str) or not sid.strip():
            raise invalid(f"servers[{i}].id", "The id field is required.")
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            raw = raw.strip().lower() == "true"  # the doc example sends strings (§6.3)
        if not isinstance(raw, bool):
            raise invalid(f"servers[{i}].inMaintenanceMode", "Must be true or false.")
        values.setdefault(sid.strip().lower(), raw)
    return _batch(*sim.server_operation(principal, alias, "setMaintenance", list(values), values))


@router.post("/v2/operations/{alias}/servers/executePackage")
async def execute_package(alias: str, request: Request) -> Response:
    sim = sim_of(request)
    principal = sim.authenticate(request.headers.get("authorization"))
    alias = sim.require_alias(principal, alias, operate=True)
    body = await read_body(request)
    if not isinstance(body.data, dict):
        raise invalid("request", "A JSON object with servers and package is required.")
    servers = ci_get(body.data, "servers")
    ids = _server_id_list(_form_list(servers) if body.from_form else servers, "servers")
    package = ci_get(body.data, "package")
    if not isinstance(package, dict):
        raise invalid("package", "The package field is required.")
    package_id = ci_get(package, "packageId")
    if not isinstance(package_id, str) or not package_id.strip():
        raise invalid("package.packageId", "The packageId field is required.")
    params = ci_get(package, "parameters")
    if params is None and body.from_form:
        params = {}  # a form cannot spell an empty object
    if not isinstance(params, dict):
        raise invalid("package.parameters", "The parameters field is required (it may be {}).")
    for key, value in params.items():
        if not isinstance(value, str):
            raise invalid(f"package.parameters.{key}", "Package parameter values must be strings.")
    return _batch(*sim.execute_package(principal, alias, ids, package_id, params))


@router.post("/v2/operations/{alias}/servers/createSnapshot")
async def create_snapshot(alias: str, request: Request) -> Response:
    sim = sim_of(request)
    principal = sim.authenticate(request.headers.get("authorization"))
    alias = sim.require_alias(principal, alias, operate=True)
    body = await read_body(request)
    if not isinstance(body.data, dict):
        raise invalid("request", "A JSON object with snapshotExpirationDays and serverIds is required.")
    days = ci_get(body.data, "snapshotExpirationDays")
    if isinstance(days, str) and days.strip().isdigit():
        days = int(days.strip())  # the doc example sends "7" (§10.1)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 10:
        raise invalid("snapshotExpirationDays", "The value must be between 1 and 10.")
    server_ids = ci_get(body.data, "serverIds")
    ids = _server_id_list(_form_list(server_ids) if body.from_form else server_ids)
    return _batch(*sim.create_snapshot(principal, alias, ids, days))


@router.get("/v2/operations/{alias}/status/{jobId}")
async def job_status(alias: str, jobId: str, request: Request) -> Response:
    sim = sim_of(request)
    alias = sim.require_alias(sim.authenticate(request.headers.get("authorization")), alias)
    return json_response({"status": sim.get_job(alias, jobId).status(sim.now())})


# ------------------------------------------------------------------------------ snapshots
@router.post("/v2/servers/{alias}/{serverId}/snapshots/{snapshotId}/restore")
async def restore_snapshot(alias: str, serverId: str, snapshotId: str, request: Request) -> Response:
    sim = sim_of(request)
    principal = sim.authenticate(request.headers.get("authorization"))
    alias = sim.require_alias(principal, alias, operate=True)
    await read_body(request)  # none, {} or an empty form
    return json_response(sim.snapshot_action(principal, alias, serverId, snapshotId, "restore"))


@router.delete("/v2/servers/{alias}/{serverId}/snapshots/{snapshotId}")
async def delete_snapshot(alias: str, serverId: str, snapshotId: str, request: Request) -> Response:
    sim = sim_of(request)
    principal = sim.authenticate(request.headers.get("authorization"))
    alias = sim.require_alias(principal, alias, operate=True)
    return json_response(sim.snapshot_action(principal, alias, serverId, snapshotId, "delete"))


# ------------------------------------------------------------------------------ packages
@router.get("/v2/packages/{alias}")
async def get_packages(alias: str, request: Request) -> Response:
    sim = sim_of(request)
    sim.require_alias(sim.authenticate(request.headers.get("authorization")), alias)
    return json_response(PACKAGES)


__all__ = ["ApiError", "router"]
