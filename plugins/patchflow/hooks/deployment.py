"""The CLC client core as this deployment configures it (connection + ``[patchflow]`` tuning).

Both transports build their ``ClientCore`` here, so the retry policy and the token timer read
the same settings in the worker and in the triggerer, and both share the token cache
(``include.clc.token_cache``: one login per run, the token never in clear outside memory).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from include.clc.client import ClientCore, ClientLog
from include.clc.retry import RetryPolicy
from include.clc.settings import ClcSettings
from include.clc.token_cache import CacheKey, SharedTokenState, TokenCache
from include.clc.tokens import TokenTimer
from include.patching.tuning import CONFIG_SECTION, Tuning

DEFAULT_CONN_ID = "clc_default"


class ClcConnectionAttributes:
    """How both CLC hooks name their connection to Airflow (an HTTP connection, ``clc_default``)."""

    conn_name_attr = "clc_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "http"


def token_timer(timing: Tuning, clock: Callable[[], float] = time.monotonic) -> TokenTimer:
    """Renewal on our clock; the token's declared lifetime is in API time, hence ``time_scale``."""
    from patchflow.tuning import time_scale

    return TokenTimer(time_scale(), timing.token_refresh_margin, clock)


def client_core(
    settings: ClcSettings,
    log: ClientLog,
    timing: Tuning,
    *,
    retry: RetryPolicy | None = None,
    timer: TokenTimer | None = None,
) -> ClientCore:
    """The core for one client; ``retry`` overrides the connection's policy (tests inject it)."""
    policy = retry or settings.retry_policy(timing.retry_base, timing.retry_cap)
    tokens = SharedTokenState(
        timer=timer or token_timer(timing),
        cache=token_cache(),
        key=CacheKey.of(settings.base_url, settings.login, settings.password),
        password=settings.password,
    )
    return ClientCore(settings, policy, tokens, log)


#: ``[patchflow] token_cache_dir``: the host's token cache folder; ``off``: this process only.
TOKEN_CACHE_DIR = "token_cache_dir"
_CACHES: dict[str, TokenCache] = {}


def token_cache_folder() -> Path | None:
    """``[patchflow] token_cache_dir``, default a folder private to this user under the temp dir."""
    from airflow.sdk import conf

    value = (conf.get(CONFIG_SECTION, TOKEN_CACHE_DIR, fallback=None) or "").strip()
    if value.lower() == "off":
        return None
    return Path(value) if value else Path(tempfile.gettempdir()) / f"patchflow-tokens-{os.getuid()}"


def token_cache() -> TokenCache:
    """This process's cache for the configured folder: one login per process at worst."""
    folder = token_cache_folder()
    name = str(folder) if folder is not None else ""
    if name not in _CACHES:
        _CACHES[name] = TokenCache(folder)
    return _CACHES[name]
