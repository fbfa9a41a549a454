"""Map each inventoried server to exactly one plan: a patch package, or a skip with a reason.

The rules are a table, not code paths: OS patterns (matched case-insensitively against both the
``os`` code and the friendly ``osType`` name) point at a package key from the registry. The
order of the eligibility checks decides which reason a server that fails several of them gets:
template first, then status, then power state, then OS, so a report never says "unsupported OS"
for a machine that is simply switched off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from include.patching import field_scope
from include.patching.clusters import custom_fields
from include.patching.packages import BY_KEY, PatchPackage
from include.patching.states import ServerState

# (pattern, package key). Codes per the CLC API reference §5.4; casing of "Bit"/"DataCenter"
# varies in the wild, hence re.IGNORECASE. Friendly names cover servers whose `os` is missing.
OS_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), key)
    for pattern, key in (
        (r"^centos[56]_64bit$", "linux_yum"),
        (r"^redhat[567]_64bit$", "linux_yum"),
        (r"^windows2012(r2)?(datacenter|standard)?_64bit$", "windows_2012"),
        (r"^centos [56] 64-bit$", "linux_yum"),
        (r"^red ?hat enterprise linux [567] 64-bit$", "linux_yum"),
        (r"^windows (server )?2012( r2)?( datacenter| standard)?( edition)? 64-bit$", "windows_2012"),
    )
)

_LINUX_HINT = re.compile(r"centos|redhat|red hat|rhel|ubuntu|debian|suse|linux|oracle", re.IGNORECASE)
_WINDOWS_HINT = re.compile(r"windows", re.IGNORECASE)


@dataclass(frozen=True)
class Plan:
    """What this run does with one server."""

    package_key: str | None
    state: ServerState | None
    """None while the server is to be patched; a terminal skip state otherwise."""
    reason: str

    @property
    def package(self) -> PatchPackage | None:
        return BY_KEY[self.package_key] if self.package_key else None


@dataclass(frozen=True)
class Scope:
    """The run's target filters (already validated).

    ``groups`` holds the selected groups' ids and names, casefolded: a server is in scope when
    its own group or any group above it has one of them as its id or as its whole name. Names
    are never split, so ``Prod`` never matches a group named ``Finance/Prod``.
    """

    data_centers: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()
    custom_fields: field_scope.FieldScope = ()

    @classmethod
    def build(
        cls,
        *,
        data_centers: Iterable[str] = (),
        groups: Iterable[str] = (),
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        custom_fields: Mapping[str, Any] | None = None,
    ) -> Scope:
        return cls(
            data_centers=frozenset(d.strip().upper() for d in data_centers if d.strip()),
            groups=frozenset(g.strip().casefold() for g in groups if g.strip()),
            allow=frozenset(s.strip().lower() for s in allow if s.strip()),
            deny=frozenset(s.strip().lower() for s in deny if s.strip()),
            custom_fields=field_scope.build(custom_fields),
        )


def group_lineage(server: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(id, name) of the server's group and every group above it, from the inventory's lists.

    Only the per-level ``group_path_ids``/``group_path_names`` lists count: a slash-joined
    path string is ambiguous (CLC allows ``/`` in a group name), so it is never split.
    Without the lists, the server's own group is all that is known.
    """
    ids = server.get("group_path_ids")
    names = server.get("group_path_names")
    if isinstance(ids, list | tuple) and isinstance(names, list | tuple) and len(ids) == len(names):
        return tuple((str(i), str(n)) for i, n in zip(ids, names, strict=True))
    own_id = server.get("group_id") or server.get("groupId") or ""
    return ((str(own_id), str(server.get("group_name") or "")),)


def in_selected_group(server: Mapping[str, Any], selected: frozenset[str]) -> bool:
    """True when the server's group or a group above it is selected by id or by whole name."""
    return any(
        gid.casefold() in selected or name.casefold() in selected for gid, name in group_lineage(server)
    )


def package_for_os(os_code: str | None, os_type: str | None = None) -> str | None:
    """The package key that patches this OS, or None when Patching-as-a-Service cannot."""
    for value in (os_code, os_type):
        if not value:
            continue
        for pattern, key in OS_RULES:
            if pattern.match(value.strip()):
                return key
    return None


def os_family(os_code: str | None, os_type: str | None = None) -> str:
    """``linux``, ``windows`` or ``other`` — for grouping in reports, patchable or not."""
    text = f"{os_code or ''} {os_type or ''}"
    if _WINDOWS_HINT.search(text):
        return "windows"
    if _LINUX_HINT.search(text):
        return "linux"
    return "other"


def filter_reason(server: Mapping[str, Any], scope: Scope) -> str | None:
    """Why the run's parameters leave this server out, or None when it is in scope."""
    server_id = str(server.get("id", "")).lower()
    if server_id in scope.deny:
        return "in the run's deny-list"
    if scope.allow and server_id not in scope.allow:
        return "not in the run's allow-list"
    dc = str(server.get("data_center") or server.get("locationId") or "").upper()
    if scope.data_centers and dc not in scope.data_centers:
        return f"data center {dc} not selected"
    if scope.groups and not in_selected_group(server, scope.groups):
        return "group not selected"
    if scope.custom_fields:
        return field_scope.mismatch(custom_fields(server.get("details")), scope.custom_fields)
    return None


def classify(server: Mapping[str, Any], scope: Scope | None = None, *, dry_run: bool = False) -> Plan:
    """The plan for one server, from its Get Server representation (plus inventory extras)."""
    reason = filter_reason(server, scope) if scope else None
    if reason:
        return Plan(None, ServerState.SKIPPED_FILTERED, reason)
    if server.get("isTemplate"):
        return Plan(None, ServerState.SKIPPED_TEMPLATE, "server is a template")
    status = server.get("status")
    if status != "active":
        return Plan(None, ServerState.SKIPPED_NOT_ACTIVE, f"status is {status!r}, not 'active'")
    power = (server.get("details") or {}).get("powerState")
    if power != "started":
        return Plan(None, ServerState.SKIPPED_NOT_RUNNING, f"power state is {power!r}, not 'started'")
    key = package_for_os(server.get("os"), server.get("osType"))
    if key is None:
        shown = server.get("osType") or server.get("os") or "unknown"
        return Plan(
            None, ServerState.SKIPPED_UNSUPPORTED_OS, f"{shown} is not supported by Patching-as-a-Service"
        )
    if dry_run:
        return Plan(key, ServerState.PLANNED_DRY_RUN, f"dry run: would apply {BY_KEY[key].title}")
    return Plan(key, None, "")
