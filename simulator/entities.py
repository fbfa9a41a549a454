"""In-memory domain objects: accounts, users, groups, servers, snapshots.

Static facts come from the fleet spec; the few mutable fields (power, maintenance,
snapshots, patch history) are what persistence saves and ``reset`` restores.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from simulator.fleet_file import PatchSpec


def hex_id(*parts: str) -> str:
    """Deterministic 32-hex id (group ids, server UUIDs): stable across restarts."""
    return hashlib.md5("|".join(parts).encode(), usedforsecurity=False).hexdigest()


@dataclass
class User:
    username: str
    password: str
    roles: list[str]
    email: str
    account: str  # alias


@dataclass
class Account:
    alias: str
    name: str
    parent: str | None
    primary_data_center: str
    #: aliases this account's users may reach: itself and every descendant
    reachable: set[str] = field(default_factory=set)


@dataclass
class Group:
    id: str
    account: str
    data_center: str
    name: str
    description: str
    type: str
    parent_id: str | None
    created: float
    children: list[str] = field(default_factory=list)  # group ids
    servers: list[str] = field(default_factory=list)  # server ids (lower-case)


@dataclass
class Snapshot:
    id: int
    created: float
    expires: float
    #: keys of the patches installed when it was taken: what a restore rolls the server back to
    installed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"id": self.id, "created": self.created, "expires": self.expires, "installed": self.installed}


@dataclass
class Server:
    id: str  # lower-case
    name: str  # upper-case
    uuid: str
    account: str
    data_center: str
    group_id: str
    os: str
    description: str
    is_template: bool
    storage_gb: int
    cpu: int
    memory_mb: int
    ip: str
    public_ip: str | None
    reboot_seconds: int
    scan_seconds: int
    patches: list[PatchSpec]
    created: float
    custom_fields: dict[str, str] = field(default_factory=dict)
    unhealthy_after_patch: bool = False
    # --- mutable state (persisted) ---
    status: str = "active"
    power_state: str = "started"
    in_maintenance: bool = False
    snapshots: list[Snapshot] = field(default_factory=list)
    next_snapshot_id: int = 1
    snapshot_pending: bool = False
    #: ids of snapshots whose deletion is queued (a new snapshot may be queued behind it)
    snapshots_deleting: list[int] = field(default_factory=list)
    executions: list[str] = field(default_factory=list)
    active_execution: str | None = None
    #: patch state: keys installed as of ``baseline_at`` (set by a restore), to which the
    #: patches that executions installed after that instant are added (see patch_state.py)
    patch_baseline: list[str] = field(default_factory=list)
    baseline_at: float = 0.0
    modified: float = 0.0
    modified_by: str = "simulator"
    #: bumped on every mutation: the key of the rendered-JSON cache
    version: int = 0

    MUTABLE = (
        "status",
        "power_state",
        "in_maintenance",
        "next_snapshot_id",
        "snapshot_pending",
        "snapshots_deleting",
        "executions",
        "active_execution",
        "patch_baseline",
        "baseline_at",
        "modified",
        "modified_by",
    )

    def touch(self, now: float, by: str) -> None:
        self.modified = now
        self.modified_by = by
        self.version += 1

    def dump_mutable(self) -> dict:
        data = {k: getattr(self, k) for k in self.MUTABLE}
        data["snapshots"] = [s.to_dict() for s in self.snapshots]
        return data

    def load_mutable(self, data: dict) -> None:
        for key in self.MUTABLE:
            if key in data:
                value = data[key]
                setattr(self, key, list(value) if isinstance(value, list) else value)
        self.snapshots = [Snapshot(**s) for s in data.get("snapshots", [])]
        self.version += 1
