"""What exists in an alias, and whether the run's scope names only things that exist (I9).

A typo in a deny-list would otherwise leave the server it was meant to protect in scope, so every
data center, group, allow- and deny-list entry is checked against the alias's group trees before
anything is touched, and every problem is named at once, in words, with a close match as hint.

Group trees are walked by nesting (each group's id and own name, root first), never by splitting
a path string: CLC allows ``/`` in a group name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from include.patching import field_scope
from include.patching.classification import Scope, in_selected_group
from include.patching.clusters import custom_fields

HINT_CUTOFF = 0.6
"""How alike a known value must be (difflib ratio) to be offered as "did you mean"."""


@dataclass(frozen=True)
class GroupNode:
    """One group of a tree, with its lineage from the data center's root group."""

    id: str
    name: str
    path_ids: tuple[str, ...]
    path_names: tuple[str, ...]
    servers: tuple[dict, ...]
    """Full server objects (only when the tree was read with ``serverDetail=detailed``)."""
    server_ids: tuple[str, ...]
    """Ids of the servers directly in this group, from the objects or the ``server`` links."""


def walk_groups(tree: Mapping[str, Any], parents: GroupNode | None = None) -> Iterator[GroupNode]:
    """Every group of ``tree`` (the group itself first), each with its lineage."""
    gid, name = str(tree["id"]), str(tree["name"])
    servers = tuple(s for s in tree.get("servers") or [] if isinstance(s, dict))
    linked = (
        str(link["id"])
        for link in tree.get("links") or []
        if isinstance(link, dict) and link.get("rel") == "server" and link.get("id")
    )
    node = GroupNode(
        id=gid,
        name=name,
        path_ids=(*(parents.path_ids if parents else ()), gid),
        path_names=(*(parents.path_names if parents else ()), name),
        servers=servers,
        server_ids=tuple(dict.fromkeys([*(str(s["id"]) for s in servers), *linked])),
    )
    yield node
    for child in tree.get("groups") or []:
        yield from walk_groups(child, node)


@dataclass(frozen=True)
class PlacedServer:
    """Where a server sits: enough for ``classification.in_selected_group``."""

    id: str
    data_center: str
    group_path_ids: tuple[str, ...]
    group_path_names: tuple[str, ...]

    def as_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "data_center": self.data_center,
            "group_path_ids": list(self.group_path_ids),
            "group_path_names": list(self.group_path_names),
        }


@dataclass(frozen=True)
class PlacedGroup:
    data_center: str
    node: GroupNode


@dataclass(frozen=True)
class AliasIndex:
    """Every data center, group and server of one alias (ids lower-case, data centers upper)."""

    alias: str
    data_centers: tuple[str, ...]
    groups: tuple[PlacedGroup, ...] = ()
    servers: Mapping[str, PlacedServer] = field(default_factory=dict)
    field_names: frozenset[str] = frozenset()
    """Custom-field names of the servers (only from trees read with ``serverDetail=detailed``)."""

    @classmethod
    def build(
        cls, alias: str, data_centers: Iterable[str], trees: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> AliasIndex:
        """From the data-center ids and one root group tree per data center."""
        groups: list[PlacedGroup] = []
        servers: dict[str, PlacedServer] = {}
        names: set[str] = set()
        for dc, tree in trees:
            for node in walk_groups(tree):
                groups.append(PlacedGroup(dc.upper(), node))
                for server in node.servers:
                    names.update(custom_fields(server.get("details")))
                for sid in node.server_ids:
                    servers.setdefault(
                        sid.lower(), PlacedServer(sid.lower(), dc.upper(), node.path_ids, node.path_names)
                    )
        dcs = tuple(sorted({d.upper() for d in data_centers}))
        return cls(alias, dcs, tuple(groups), servers, frozenset(names))

    def groups_matching(self, selector: str) -> list[PlacedGroup]:
        """Groups whose id or whole own name is ``selector`` (case-insensitive)."""
        wanted = selector.casefold()
        return [g for g in self.groups if wanted in (g.node.id.casefold(), g.node.name.casefold())]


def _hint(value: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` when a known value is close enough, else an empty string."""
    candidates = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(value.casefold(), list(candidates), n=1, cutoff=HINT_CUTOFF)
    return f" (did you mean {candidates[close[0]]!r}?)" if close else ""


def data_center_problems(selected: Iterable[str], index: AliasIndex) -> list[str]:
    known = ", ".join(index.data_centers) or "none"
    return [
        f"data_centers: {dc!r} is not a data center of alias {index.alias}"
        f"{_hint(dc, index.data_centers)}; the alias has {known}"
        for dc in selected
        if dc.upper() not in index.data_centers
    ]


def group_problems(selected: Iterable[str], data_centers: Iterable[str], index: AliasIndex) -> list[str]:
    """Each group entry must name an existing group, in a selected data center if any are."""
    chosen_dcs = {d.upper() for d in data_centers}
    known = {g.node.name for g in index.groups} | {g.node.id for g in index.groups}
    problems: list[str] = []
    for selector in selected:
        matches = index.groups_matching(selector)
        if not matches:
            problems.append(
                f"groups: {selector!r} is neither the name nor the id of a group of alias "
                f"{index.alias}{_hint(selector, known)}"
            )
            continue
        where = sorted({g.data_center for g in matches})
        if chosen_dcs and not chosen_dcs & set(where):
            problems.append(
                f"groups: {selector!r} is only in data center {', '.join(where)}, which data_centers "
                "does not select, so it would select nothing"
            )
    return problems


def server_problems(name: str, selected: Iterable[str], index: AliasIndex) -> list[str]:
    return [
        f"{name}: {sid!r} is not a server of alias {index.alias}{_hint(sid, index.servers)}"
        for sid in selected
        if sid.lower() not in index.servers
    ]


def unreachable_allow_problems(
    allow: Iterable[str], data_centers: Iterable[str], groups: Iterable[str], index: AliasIndex
) -> list[str]:
    """Allow-list servers that the data-center or group filters leave out would never be patched."""
    chosen_dcs = {d.upper() for d in data_centers}
    selectors = Scope.build(groups=groups).groups
    problems: list[str] = []
    for sid in allow:
        placed = index.servers.get(sid.lower())
        if placed is None:
            continue
        if chosen_dcs and placed.data_center not in chosen_dcs:
            problems.append(
                f"server_allow_list: {sid!r} is in data center {placed.data_center}, which "
                "data_centers does not select, so it would never be patched"
            )
        elif selectors and not in_selected_group(placed.as_row(), selectors):
            lineage = " > ".join(placed.group_path_names)
            problems.append(
                f"server_allow_list: {sid!r} is in group {lineage!r}, under none of the selected "
                "groups, so it would never be patched"
            )
    return problems


def scope_problems(
    *,
    data_centers: Iterable[str],
    groups: Iterable[str],
    allow: Iterable[str],
    deny: Iterable[str],
    index: AliasIndex,
    fields: Iterable[str] = (),
) -> list[str]:
    """Every entry of the run's scope that names nothing in the alias, each with a sentence."""
    data_centers, groups, allow = list(data_centers), list(groups), list(allow)
    # An allow-list entry is only blamed for filters that exist; a missing one is named already.
    real_dcs = [d for d in data_centers if d.upper() in index.data_centers]
    real_groups = [g for g in groups if index.groups_matching(g)]
    return [
        *data_center_problems(data_centers, index),
        *group_problems(groups, real_dcs, index),
        *server_problems("server_allow_list", allow, index),
        *unreachable_allow_problems(allow, real_dcs, real_groups, index),
        *server_problems("server_deny_list", deny, index),
        *field_scope.name_problems(fields, index.field_names, index.alias, _hint),
    ]
