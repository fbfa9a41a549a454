"""What a CLC connection means to the clients (shared by the sync hook and the async client).

Read from an Airflow HTTP connection object, but only through its plain attributes (``host``,
``schema``, ``port``, ``login``, ``password``, ``extra_dejson``), so this module imports no
Airflow. HttpHook/HttpAsyncHook send every unknown connection ``extra`` key as an HTTP header,
so the transports strip the keys listed in ``OWN_EXTRA_KEYS`` before any request is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from include.clc.endpoints import Api
from include.clc.retry import RetryPolicy

#: Connection extra keys read by this package (never sent as headers).
OWN_EXTRA_KEYS = frozenset(
    {"account_alias", "patching_base_url", "retry_attempts", "retry_base", "retry_cap"}
)
REAL_API_HOST = "api.ctl.io"
REAL_PATCHING_BASE = "https://patching.useast.appfog.ctl.io/rest"


@dataclass(frozen=True)
class ClcSettings:
    base_url: str
    """The v2 API root, e.g. ``http://127.0.0.1:8899/v2``."""
    patching_base_url: str
    login: str
    password: str = field(repr=False)
    account_alias: str | None = None
    timeout: float = 30.0
    retry_attempts: int = 5
    retry_base: float | None = None
    """Connection extra; None: the deployment's tuning (scaled by ``time_scale``)."""
    retry_cap: float | None = None

    @classmethod
    def from_connection(cls, conn: Any) -> ClcSettings:
        extra = conn.extra_dejson or {}
        host = (conn.host or "").rstrip("/")
        if not host:
            raise ValueError(f"connection {conn.conn_id!r} has no host (expected e.g. https://api.ctl.io/v2)")
        if "://" not in host:
            host = f"{conn.schema or 'https'}://{host}"
        if conn.port:
            scheme, rest = host.split("://", 1)
            netloc, _, path = rest.partition("/")
            host = f"{scheme}://{netloc}:{conn.port}" + (f"/{path}" if path else "")
        if not conn.login or not conn.password:
            raise ValueError(f"connection {conn.conn_id!r} needs login and password")
        patching = extra.get("patching_base_url")
        if not patching:
            if REAL_API_HOST in host:
                patching = REAL_PATCHING_BASE
            else:
                root = host[: -len("/v2")] if host.endswith("/v2") else host
                patching = f"{root}/patching/rest"
        return cls(
            base_url=host,
            patching_base_url=str(patching).rstrip("/"),
            login=conn.login,
            password=conn.password,
            account_alias=extra.get("account_alias") or None,
            timeout=float(extra.get("timeout", 30)),
            retry_attempts=int(extra.get("retry_attempts", 5)),
            retry_base=_optional_float(extra.get("retry_base")),
            retry_cap=_optional_float(extra.get("retry_cap")),
        )

    def url(self, api: Api, path: str) -> str:
        root = self.base_url if api is Api.V2 else self.patching_base_url
        return f"{root}/{path.lstrip('/')}"

    def retry_policy(self, default_base: float, default_cap: float) -> RetryPolicy:
        """The connection's retry settings; backoff base/cap default to the deployment's tuning."""
        base = default_base if self.retry_base is None else self.retry_base
        cap = default_cap if self.retry_cap is None else self.retry_cap
        return RetryPolicy(self.retry_attempts, base, cap)


def _optional_float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)
