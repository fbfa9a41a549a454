"""Clusters: servers that serve together, of which only ``max_per_cluster`` may be in flight.

Which servers form a cluster is the run's ``cluster_by`` setting:

- ``field:<name>`` (the default, ``field:cluster``): the servers with the same value in the CLC
  custom field ``<name>``; a server without that field (or with it empty) is in no cluster;
- ``group``: the servers of the same CLC group (its direct members);
- ``none``: no clusters.

A cluster is keyed ``<kind>:<value>`` so a group id and a field value never collide. Keys are
recorded in the rollout ledger (``LedgerEntry.cluster``) when it is created.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_CLUSTER_BY = "field:cluster"
DEFAULT_MAX_PER_CLUSTER = 1
_FIELD = re.compile(r"^field:(.{1,100})$", re.DOTALL)


def cluster_by_problem(value: Any) -> str | None:
    """Why ``value`` is no valid ``cluster_by`` (a phrase after the parameter's name), or None."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        return f"expected 'field:<custom field name>', 'group' or 'none', got {value!r}"
    text = value.strip()
    if text in ("group", "none") or (_FIELD.match(text) and text[6:].strip()):
        return None
    return f"expected 'field:<custom field name>', 'group' or 'none', got {value!r}"


def custom_fields(details: Mapping[str, Any] | None) -> dict[str, str]:
    """``{name: value}`` of a server's ``details.customFields`` (``{id, name, value, displayValue}``)."""
    out: dict[str, str] = {}
    for item in (details or {}).get("customFields") or []:
        if isinstance(item, Mapping) and item.get("name"):
            value = item.get("value")
            out[str(item["name"])] = "" if value is None else str(value)
    return out


def cluster_key(row: Mapping[str, Any], cluster_by: str | None) -> str | None:
    """The cluster of one plan row (``custom_fields``, ``group_id``) under ``cluster_by``."""
    how = (cluster_by or DEFAULT_CLUSTER_BY).strip()
    if how == "none":
        return None
    if how == "group":
        group = row.get("group_id")
        return f"group:{group}" if group else None
    name = how[len("field:") :].strip()
    fields = row.get("custom_fields") or {}
    wanted = name.lower()
    value = next((str(v).strip() for k, v in fields.items() if str(k).strip().lower() == wanted), "")
    return f"{name}:{value}" if value else None


def admit(
    candidates: Sequence[str],
    cluster_of: Mapping[str, str | None],
    in_flight: Iterable[str],
    *,
    limit: int,
    slots: int,
) -> list[str]:
    """Up to ``slots`` of ``candidates`` (in order) that keep every cluster within ``limit`` in flight."""
    busy = Counter(c for sid in in_flight if (c := cluster_of.get(sid)))
    chosen: list[str] = []
    for sid in candidates:
        if len(chosen) >= slots:
            break
        cluster = cluster_of.get(sid)
        if cluster:
            if busy[cluster] >= limit:
                continue
            busy[cluster] += 1
        chosen.append(sid)
    return chosen


def max_per_cluster_problem(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        return f"expected a whole number of at least 1, got {value!r}"
    if not str(value).strip().isascii() or int(str(value).strip()) < 1:
        return f"expected a whole number of at least 1, got {value!r}"
    return None
