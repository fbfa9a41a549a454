"""Servers' live state for the maintenance release: a few group reads instead of one GET each.

The release re-checks every server the run may have put into maintenance (I2). One Get Server
per server is one request per patched server; the inventory's detailed, recursive group read per
data center returns every server's ``inMaintenanceMode`` in a handful of requests. A server the
trees do not list (deleted, moved out of reach) — or every server, when the trees cannot be
read — is asked for on its own as before, so a 404 still means "gone" and an unreadable state
is still recorded as such.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from include.clc.errors import ClcError

log = logging.getLogger(__name__)

#: From this many servers on, the group trees are read instead of each server.
BULK_FROM = 20


def server_reader(
    api: Any, alias: str, ids: list[str], *, bulk_from: int = BULK_FROM, logger: Any = log
) -> Callable[[str], dict]:
    """``read(server_id)`` answering like ``api.get_server(alias, server_id)``."""
    single: Callable[[str], dict] = lambda sid: api.get_server(alias, sid)  # noqa: E731
    inventory = getattr(api, "inventory", None)
    if len(ids) < bulk_from or inventory is None:
        return single
    try:
        listed = _by_id(inventory(alias))
    except ClcError as exc:
        logger.warning("group trees unreadable (%s); checking %d server(s) one by one", exc, len(ids))
        return single

    def read(sid: str) -> dict:
        found = listed.get(sid.lower())
        return found if found is not None else single(sid)

    return read


def _by_id(servers: Iterable[dict]) -> dict[str, dict]:
    return {str(s.get("id", "")).lower(): s for s in servers}
