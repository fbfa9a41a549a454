"""The CLC client core as this deployment configures it (connection + ``[patchflow]`` tuning).

Both transports build their ``ClientCore`` here, so the retry policy and the token timer read
the same settings in the worker and in the triggerer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from include.clc.client import ClientCore, ClientLog
from include.clc.retry import RetryPolicy
from include.clc.settings import ClcSettings
from include.clc.tokens import TokenState, TokenTimer
from include.patching.tuning import Tuning

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
    return ClientCore(settings, policy, TokenState(timer or token_timer(timing)), log)
