"""Every CLC call patchflow makes, in one place: method, API root, path, body and answer parser.

Each function returns an ``ApiCall`` that both transports send as it is, so a path, a query
parameter or the parser of an answer is written once. Path segments that come from data
(aliases, server ids, job ids) are always percent-quoted by ``segment``: an id holding ``/``
or ``?`` cannot reach another endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from include.clc import shapes
from include.clc.shapes import BatchItem, Login, QueueStatus

T = TypeVar("T")


class Api(StrEnum):
    """Which root a path is relative to (both come from the connection, see ``ClcSettings``)."""

    V2 = "v2"
    PATCHING = "patching"


class CallKind(StrEnum):
    """What a call may do to the platform, which decides how it is retried (``retry.decide``)."""

    LOGIN = "login"
    """``POST authentication/login``: unauthenticated; a refused login is permanent."""
    READ = "read"
    """A GET: no side effect, retried on every transient failure."""
    BATCH = "batch"
    """An idempotent batch POST (maintenance on/off): retried like a read; a 400 whose body is
    the per-server array is an answer."""
    SUBMIT = "submit"
    """Execute Package: must never run twice, so never resent once it may have been processed."""

    @property
    def authenticated(self) -> bool:
        return self is not CallKind.LOGIN

    @property
    def idempotent(self) -> bool:
        return self is not CallKind.SUBMIT

    @property
    def answers_per_server(self) -> bool:
        return self in (CallKind.BATCH, CallKind.SUBMIT)


class BatchOperation(StrEnum):
    """``POST operations/{alias}/servers/{operation}`` (§6)."""

    START_MAINTENANCE = "startMaintenance"
    STOP_MAINTENANCE = "stopMaintenance"
    EXECUTE_PACKAGE = "executePackage"
    CREATE_SNAPSHOT = "createSnapshot"


@dataclass(frozen=True)
class ApiCall(Generic[T]):
    """One request to send, and how to read its answer."""

    method: Literal["GET", "POST", "DELETE"]
    api: Api
    path: str
    """Relative to the API root, its data segments already quoted."""
    parse: Callable[[Any, str], T] = field(repr=False)
    """``parse(body, endpoint)``: validates the decoded body, naming the endpoint on failure."""
    kind: CallKind = CallKind.READ
    params: dict[str, str] | None = None
    body: Any = field(default=None, repr=False)
    """The JSON body; never in a repr (the login body holds the password, I6)."""


def segment(value: object) -> str:
    """One path segment, percent-quoted (``/`` included)."""
    return quote(str(value), safe="")


def _path(*parts: str) -> str:
    """Join literal parts; callers pass data through ``segment`` first."""
    return "/".join(parts)


def login(username: str, password: str) -> ApiCall[Login]:
    body = {"username": username, "password": password}
    return ApiCall("POST", Api.V2, "authentication/login", shapes.parse_login, CallKind.LOGIN, body=body)


def datacenters(alias: str) -> ApiCall[list[dict]]:
    return ApiCall("GET", Api.V2, _path("datacenters", segment(alias)), shapes.parse_datacenters)


def datacenter(alias: str, dc: str, *, group_links: bool) -> ApiCall[dict]:
    path = _path("datacenters", segment(alias), segment(dc))
    params = {"groupLinks": str(group_links).lower()}
    return ApiCall("GET", Api.V2, path, shapes.parse_datacenter, params=params)


def group(alias: str, group_id: str, *, detailed: bool) -> ApiCall[dict]:
    params = {"serverDetail": "detailed"} if detailed else None
    path = _path("groups", segment(alias), segment(group_id))
    return ApiCall("GET", Api.V2, path, shapes.parse_group, params=params)


def server(alias: str, server_id: str) -> ApiCall[dict]:
    return ApiCall("GET", Api.V2, _path("servers", segment(alias), segment(server_id)), shapes.parse_server)


def _batch(alias: str, operation: BatchOperation, body: Any) -> ApiCall[list[BatchItem]]:
    # A second createSnapshot after a lost answer is refused "already has a snapshot", which
    # would look like an owner's snapshot: never replayed either (include.patching.snapshots).
    not_twice = (BatchOperation.EXECUTE_PACKAGE, BatchOperation.CREATE_SNAPSHOT)
    kind = CallKind.SUBMIT if operation in not_twice else CallKind.BATCH
    path = _path("operations", segment(alias), "servers", operation.value)
    return ApiCall("POST", Api.V2, path, shapes.parse_batch, kind, body=body)


def start_maintenance(alias: str, server_ids: Iterable[str]) -> ApiCall[list[BatchItem]]:
    """Idempotent on the platform (already in maintenance → ``isQueued: false``), so retried."""
    return _batch(alias, BatchOperation.START_MAINTENANCE, list(server_ids))


def stop_maintenance(alias: str, server_ids: Iterable[str]) -> ApiCall[list[BatchItem]]:
    return _batch(alias, BatchOperation.STOP_MAINTENANCE, list(server_ids))


def execute_package(
    alias: str, server_ids: Iterable[str], package_id: str, parameters: dict[str, str] | None = None
) -> ApiCall[list[BatchItem]]:
    body = {"servers": list(server_ids), "package": {"packageId": package_id, "parameters": parameters or {}}}
    return _batch(alias, BatchOperation.EXECUTE_PACKAGE, body)


def create_snapshot(alias: str, server_ids: Iterable[str], expiration_days: int) -> ApiCall[list[BatchItem]]:
    """One batch, one job (§10.1); the platform takes the snapshots one after the other."""
    body = {"snapshotExpirationDays": expiration_days, "serverIds": list(server_ids)}
    return _batch(alias, BatchOperation.CREATE_SNAPSHOT, body)


def restore_snapshot(alias: str, server_id: str, snapshot_id: str) -> ApiCall[str]:
    """Revert a server to its snapshot (§10.2): answers one status link; never replayed."""
    path = _path("servers", segment(alias), segment(server_id), "snapshots", segment(snapshot_id), "restore")
    return ApiCall("POST", Api.V2, path, shapes.parse_status_link, CallKind.SUBMIT, body={})


def delete_snapshot(alias: str, server_id: str, snapshot_id: str) -> ApiCall[str]:
    """Delete a snapshot (§10.3): answers one status link. Idempotent (a second one finds none)."""
    path = _path("servers", segment(alias), segment(server_id), "snapshots", segment(snapshot_id))
    return ApiCall("DELETE", Api.V2, path, shapes.parse_status_link, CallKind.BATCH)


def queue_status(alias: str, job_id: str) -> ApiCall[QueueStatus]:
    path = _path("operations", segment(alias), "status", segment(job_id))
    return ApiCall("GET", Api.V2, path, shapes.parse_queue_status)


def patch_summary(alias: str, server_id: str) -> ApiCall[list[dict]]:
    path = _path("servers", segment(alias), "server", segment(server_id), "patch")
    return ApiCall("GET", Api.PATCHING, path, shapes.parse_summary)


def patch_detail(alias: str, server_id: str, execution_id: str) -> ApiCall[dict]:
    path = _path("servers", segment(alias), "server", segment(server_id), "patch", segment(execution_id))
    return ApiCall("GET", Api.PATCHING, path, shapes.parse_detail)
