"""What the ``clc_default`` connection means to the CLC hooks (shared by sync and async).

HttpHook/HttpAsyncHook send every unknown connection ``extra`` key as an HTTP header, so
the keys listed in ``OWN_EXTRA_KEYS`` are stripped before any request is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from include.patching.backoff import RetryPolicy
from include.patching.tuning import Tuning

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


def _optional_float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def retry_policy(settings: ClcSettings, timing: Tuning) -> RetryPolicy:
    """The connection's retry settings; backoff base/cap default to the tuning's."""
    base = timing.retry_base if settings.retry_base is None else settings.retry_base
    cap = timing.retry_cap if settings.retry_cap is None else settings.retry_cap
    return RetryPolicy(settings.retry_attempts, base, cap)


def api_message(body: Any, limit: int = 300) -> str:
    """The API's own error text (``message``, ``modelState`` or batch ``errorMessage``s)."""
    text = ""
    if isinstance(body, dict):
        parts = [str(body["message"])] if body.get("message") else []
        state = body.get("modelState")
        if isinstance(state, dict):
            for key, value in state.items():
                parts.append(f"{key}: {'; '.join(map(str, value)) if isinstance(value, list) else value}")
        text = " ".join(parts)
    elif isinstance(body, list):
        text = "; ".join(
            f"{i.get('server', '?')}: {i['errorMessage']}"
            for i in body
            if isinstance(i, dict) and i.get("errorMessage")
        )
    return text[:limit]


def scrub(text: str, secrets: list[str | None]) -> str:
    """Replace any secret that slipped into ``text`` (belt and braces for I6)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
