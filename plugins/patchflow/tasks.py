"""The bodies of patch_fleet's TaskFlow tasks, kept out of the DAG file so it parses fast.

Each function does one step of a run and returns only references and counts for XCom; the
data itself (inventory, plan, results) lives in run artifacts (see ``include.artifacts``).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pendulum
from airflow.sdk.exceptions import AirflowFailException

from include.artifacts import read_json, run_folder, write_json
from include.patching import run_params
from include.patching.classification import Scope, classify, os_family
from include.patching.packages import BY_KEY
from patchflow.locations import artifacts_base, as_location

log = logging.getLogger(__name__)


def preflight(params: dict[str, Any], *, conn_id: str) -> dict[str, Any]:
    """Validate the run's parameters, log in and check the alias is reachable — touch nothing."""
    from patchflow.hooks.clc import ClcHook

    try:
        settings = run_params.validate(params)
    except run_params.ParameterError as exc:
        raise AirflowFailException(f"Invalid run parameter — {exc}") from None
    hook = ClcHook(conn_id)
    hook.login()
    alias = settings.account_alias or hook.account_alias
    datacenters = hook.list_datacenters(alias)  # 403 here = the alias is outside the user's reach (I5)
    known = {d["id"].upper() for d in datacenters}
    missing = sorted(set(settings.data_centers) - known)
    if missing:
        raise AirflowFailException(
            f"Invalid run parameter — data_centers: {missing[0]} is not a data center of {alias} "
            f"(known: {', '.join(sorted(known))})"
        )
    resolved = settings.as_dict() | {"account_alias": alias}
    log.info("Preflight passed: %s", resolved)
    return resolved


def inventory(settings: dict[str, Any], *, conn_id: str, dag_id: str, run_id: str) -> dict[str, Any]:
    """Every server in scope with its details, written as the run's inventory artifact."""
    from patchflow.hooks.clc import ClcHook

    alias = settings["account_alias"]
    servers = ClcHook(conn_id).inventory(alias, data_centers=settings["data_centers"] or None)
    path = run_folder(artifacts_base(), dag_id, run_id) / "inventory.json"
    write_json(path, {"account_alias": alias, "collected_at": _now(), "servers": servers})
    by_dc = Counter(str(s.get("data_center", "")).upper() for s in servers)
    log.info("Inventory: %d servers (%s) -> %s", len(servers), dict(by_dc), path)
    return {"inventory_path": str(path), "servers": len(servers), "by_data_center": dict(by_dc)}


def plan_row(server: dict[str, Any], scope: Scope, *, dry_run: bool) -> dict[str, Any]:
    """One server's plan, with the facts the rollout and the audit need."""
    plan = classify(server, scope, dry_run=dry_run)
    details = server.get("details") or {}
    package = BY_KEY[plan.package_key] if plan.package_key else None
    return {
        "id": str(server["id"]).lower(),
        "name": server.get("name") or str(server["id"]).upper(),
        "description": server.get("description") or "",
        "data_center": str(server.get("data_center") or server.get("locationId") or "").upper(),
        "group_id": server.get("group_id") or server.get("groupId"),
        "group_name": server.get("group_name"),
        "os": server.get("os"),
        "os_type": server.get("osType"),
        "os_family": os_family(server.get("os"), server.get("osType")),
        "status": server.get("status"),
        "power_state": details.get("powerState"),
        "in_maintenance": bool(details.get("inMaintenanceMode")),
        "is_template": bool(server.get("isTemplate")),
        "package_key": plan.package_key,
        "package_id": package.package_id if package else None,
        "state": plan.state.value if plan.state else None,
        "reason": plan.reason,
    }


def classify_servers(
    settings: dict[str, Any], inventory_ref: dict[str, Any], *, dag_id: str, run_id: str
) -> dict[str, Any]:
    """Plan every inventoried server and write the plan artifact the rollouts and audit read."""
    inv = read_json(as_location(inventory_ref["inventory_path"]))
    scope = Scope.build(
        groups=settings["groups"], allow=settings["server_allow_list"], deny=settings["server_deny_list"]
    )
    rows = [plan_row(s, scope, dry_run=settings["dry_run"]) for s in inv["servers"]]
    rows.sort(key=lambda r: r["id"])
    path = run_folder(artifacts_base(), dag_id, run_id) / "plan.json"
    write_json(path, {"account_alias": settings["account_alias"], "settings": settings, "servers": rows})
    to_patch = Counter(r["package_key"] for r in rows if r["package_key"] and r["state"] is None)
    by_state = Counter(r["state"] or "to_patch" for r in rows)
    log.info(
        "Plan: %d servers; to patch per package %s; %s -> %s", len(rows), dict(to_patch), dict(by_state), path
    )
    return {
        "plan_path": str(path),
        "servers": len(rows),
        "to_patch": dict(to_patch),
        "by_state": dict(by_state),
    }


def _now() -> str:
    return pendulum.now("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
