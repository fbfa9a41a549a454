"""Render model objects in the reference's JSON shapes (§3-§5), as JSON text.

Server objects are cached as serialized text keyed by (version, live power state), and
groups are assembled from those fragments, so a detailed read of a 10,000-server tree is
mostly string joining.
"""

from __future__ import annotations

import json

from simulator.clock import iso
from simulator.core import Simulator
from simulator.entities import Account, Group, Server, hex_id
from simulator.oscatalog import lookup_os

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps(obj) -> str:
    return _dumps(obj)


def change_info(created: float, modified: float, by: str) -> dict:
    return {
        "createdBy": "simulator",
        "createdDate": iso(created),
        "modifiedBy": by,
        "modifiedDate": iso(modified),
    }


# ---------------------------------------------------------------------------- accounts
def account_dict(account: Account) -> dict:
    """``GET /v2/accounts/{alias}``: the fields the published Python SDK's ``clc.v2.Account``
    reads. The simulator keeps no postal data, so the address fields are empty strings."""
    a = account.alias.lower()
    links = [{"rel": "self", "href": f"/v2/accounts/{a}", "verbs": ["GET"]}]
    if account.parent is not None:
        links.append({"rel": "parentAccount", "href": f"/v2/accounts/{account.parent.lower()}"})
    return {
        "accountAlias": account.alias,
        "parentAlias": account.parent,
        "businessName": account.name,
        "addressLine1": "",
        "addressLine2": "",
        "city": "",
        "stateProvince": "",
        "postalCode": "",
        "country": "",
        "telephone": "",
        "status": "active",
        "primaryDataCenter": account.primary_data_center,
        "isManaged": False,
        "links": links,
    }


# ---------------------------------------------------------------------------- servers
def server_links(server: Server, a: str) -> list[dict]:
    sid = server.id
    base = f"/v2/servers/{a}/{sid}"
    links: list[dict[str, object]] = [
        {"rel": "self", "href": base, "id": sid, "verbs": ["GET", "PATCH", "DELETE"]},
        {"rel": "group", "href": f"/v2/groups/{a}/{server.group_id}", "id": server.group_id},
        {"rel": "account", "href": f"/v2/accounts/{a}", "id": a},
        {"rel": "billing", "href": f"/v2/billing/{a}/serverPricing/{sid}"},
    ]
    if server.status != "active":
        links[0]["verbs"] = ["GET", "PATCH"]
        return links
    links += [
        {"rel": "statistics", "href": f"{base}/statistics"},
        {
            "rel": "upcomingScheduledActivities",
            "href": f"/v2/servers/{a}/{server.uuid}/upcomingScheduledActivities",
        },
        {
            "rel": "scheduledActivities",
            "href": f"/v2/servers/{a}/{server.uuid}/scheduledActivities",
            "verbs": ["GET", "POST"],
        },
        {"rel": "publicIPAddresses", "href": f"{base}/publicIPAddresses", "verbs": ["POST"]},
        {"rel": "alertPolicyMappings", "href": f"{base}/alertPolicies", "verbs": ["POST"]},
        {
            "rel": "antiAffinityPolicyMapping",
            "href": f"{base}/antiAffinityPolicy",
            "verbs": ["PUT", "DELETE"],
        },
        {
            "rel": "cpuAutoscalePolicyMapping",
            "href": f"{base}/cpuAutoscalePolicy",
            "verbs": ["PUT", "DELETE"],
        },
        {"rel": "capabilities", "href": f"{base}/capabilities"},
        {"rel": "credentials", "href": f"{base}/credentials"},
    ]
    if server.public_ip:
        links.append(
            {
                "rel": "publicIPAddress",
                "href": f"{base}/publicIPAddresses/{server.public_ip}",
                "id": server.public_ip,
                "verbs": ["GET", "PUT", "DELETE"],
            }
        )
    return links


def server_dict(sim: Simulator, server: Server, now: float) -> dict:
    a = server.account.lower()
    info = lookup_os(server.os)
    data: dict = {
        "id": server.id,
        "name": server.name,
        "description": server.description,
        "groupId": server.group_id,
        "isTemplate": server.is_template,
        "locationId": server.data_center,
        "osType": info.friendly if info else server.os,
        "os": server.os,
        "status": server.status,
    }
    if server.status == "active":
        ips: list[dict] = [{"internal": server.ip}]
        if server.public_ip:
            ips.append({"public": server.public_ip, "internal": server.ip})
        linux = info is None or info.family == "linux"
        root = max(1, server.storage_gb - 3)
        data["details"] = {
            "ipAddresses": ips,
            "secondaryIPAddresses": [],
            "alertPolicies": [],
            "cpu": server.cpu,
            "diskCount": 2,
            "hostName": server.id,
            "inMaintenanceMode": server.in_maintenance,
            "memoryMB": server.memory_mb,
            "powerState": sim.power_now(server, now),
            "storageGB": server.storage_gb,
            "disks": [
                {"id": "0:0", "sizeGB": 3, "partitionPaths": []},
                {"id": "0:1", "sizeGB": root, "partitionPaths": []},
            ],
            "partitions": (
                [
                    {"sizeGB": 2.0, "path": "(swap)"},
                    {"sizeGB": float(root), "path": "/"},
                    {"sizeGB": 0.482, "path": "/boot"},
                ]
                if linux
                else [{"sizeGB": float(root), "path": "C:\\"}]
            ),
            "snapshots": [
                {
                    "name": iso(s.created)[:-1].replace("T", "."),
                    "links": [
                        {"rel": "self", "href": f"/v2/servers/{a}/{server.id}/snapshots/{s.id}"},
                        {"rel": "delete", "href": f"/v2/servers/{a}/{server.id}/snapshots/{s.id}"},
                        {"rel": "restore", "href": f"/v2/servers/{a}/{server.id}/snapshots/{s.id}/restore"},
                    ],
                }
                for s in server.snapshots
                if s.expires > now
            ],
            "customFields": [
                {"id": hex_id("customField", name), "name": name, "value": value, "displayValue": value}
                for name, value in server.custom_fields.items()
            ],
        }
    elif server.status in ("archived", "queuedForRestore"):
        data["details"] = {"powerState": "stopped", "storageGB": server.storage_gb}
    data["type"] = "standard"
    data["storageType"] = "standard"
    data["changeInfo"] = change_info(server.created, server.modified, server.modified_by)
    data["links"] = server_links(server, a)
    return data


def server_json(sim: Simulator, server: Server, now: float) -> str:
    power = sim.power_now(server, now)
    snaps = tuple(s.id for s in server.snapshots if s.expires > now)
    key = (server.version, power, snaps)
    cached = sim.render_cache.get(server.id)
    if cached is not None and cached[0] == key:
        return cached[1]
    text = dumps(server_dict(sim, server, now))
    sim.render_cache[server.id] = (key, text)
    return text


# ---------------------------------------------------------------------------- groups
def group_links(sim: Simulator, group: Group) -> list[dict]:
    a = group.account.lower()
    base = f"/v2/groups/{a}/{group.id}"
    is_root = group.parent_id is None
    verbs = ["GET", "PATCH"] if is_root or group.type != "default" else ["GET", "PATCH", "DELETE"]
    links: list[dict] = [
        {"rel": "createGroup", "href": f"/v2/groups/{a}", "verbs": ["POST"]},
        {"rel": "createServer", "href": f"/v2/servers/{a}", "verbs": ["POST"]},
        {"rel": "self", "href": base, "verbs": verbs},
    ]
    if not is_root:
        links.append(
            {"rel": "parentGroup", "href": f"/v2/groups/{a}/{group.parent_id}", "id": group.parent_id}
        )
    links += [
        {"rel": "defaults", "href": f"{base}/defaults", "verbs": ["GET", "POST"]},
        {"rel": "billing", "href": f"{base}/billing"},
    ]
    if not is_root:
        links.append({"rel": "archiveGroupAction", "href": f"{base}/archive"})
    links += [
        {"rel": "statistics", "href": f"{base}/statistics"},
        {"rel": "upcomingScheduledActivities", "href": f"{base}/upcomingScheduledActivities"},
        {
            "rel": "horizontalAutoscalePolicyMapping",
            "href": f"{base}/horizontalAutoscalePolicy",
            "verbs": ["GET", "PUT", "DELETE"],
        },
        {"rel": "scheduledActivities", "href": f"{base}/scheduledActivities", "verbs": ["GET", "POST"]},
    ]
    for sid in group.servers:
        server = sim.servers[sid]
        links.append({"rel": "server", "href": f"/v2/servers/{a}/{sid}", "id": server.name})
    return links


def group_json(sim: Simulator, group: Group, detailed: bool, now: float) -> str:
    head = dumps(
        {
            "id": group.id,
            "name": group.name,
            "description": group.description,
            "locationId": group.data_center,
            "type": group.type,
            "status": "active",
            "serversCount": sim.servers_count[group.id],
        }
    )[:-1]
    parts = [
        head,
        ',"groups":[',
        ",".join(group_json(sim, sim.groups[c], detailed, now) for c in group.children),
        "]",
    ]
    if detailed:
        parts += [',"servers":[', ",".join(server_json(sim, sim.servers[s], now) for s in group.servers), "]"]
    tail = dumps(
        {
            "links": group_links(sim, group),
            "changeInfo": change_info(group.created, group.created, "simulator"),
            "customFields": [],
        }
    )[1:]
    parts += [",", tail]
    return "".join(parts)


# ---------------------------------------------------------------------------- data centers
def datacenter_dict(sim: Simulator, alias: str, dc: str, group_links_wanted: bool) -> dict:
    a, d = alias.lower(), dc.lower()
    links: list[dict] = [{"rel": "self", "href": f"/v2/datacenters/{a}/{d}"}]
    if group_links_wanted:
        root = sim.group_by_path[(alias, dc)]
        groot = f"/v2/groups/{a}/{root}"
        links += [
            {"rel": "deploymentCapabilities", "href": f"/v2/datacenters/{a}/{d}/deploymentCapabilities"},
            {"rel": "loadBalancers", "href": f"/v2/sharedLoadBalancers/{a}/{d}", "verbs": ["GET", "POST"]},
            {
                "rel": "computeLimits",
                "href": f"/v2/datacenters/{a}/{d}/computeLimits",
                "verbs": ["GET", "POST"],
            },
            {"rel": "networkLimits", "href": f"/v2/datacenters/{a}/{d}/networkLimits", "verbs": ["GET"]},
            {"rel": "availableOvfs", "href": f"/v2/vmImport/{a}/{d}/available", "verbs": ["GET"]},
            {"rel": "group", "href": groot, "id": root, "name": sim.groups[root].name},
            {"rel": "createGroup", "href": f"/v2/groups/{a}", "verbs": ["POST"]},
            {"rel": "createServer", "href": f"/v2/servers/{a}", "verbs": ["POST"]},
            {"rel": "defaults", "href": f"{groot}/defaults", "verbs": ["GET", "POST"]},
            {"rel": "billing", "href": f"{groot}/billing"},
            {"rel": "statistics", "href": f"{groot}/statistics"},
            {"rel": "upcomingScheduledActivities", "href": f"{groot}/upcomingScheduledActivities"},
            {
                "rel": "horizontalAutoscalePolicyMapping",
                "href": f"{groot}/horizontalAutoscalePolicy",
                "verbs": ["GET", "PUT", "DELETE"],
            },
            {"rel": "scheduledActivities", "href": f"{groot}/scheduledActivities", "verbs": ["GET", "POST"]},
        ]
    return {"id": d, "name": sim.fleet.data_centers[dc], "links": links}
