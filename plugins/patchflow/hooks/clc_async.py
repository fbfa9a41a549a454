"""Async CLC client for the triggerer, built on the HTTP provider's ``HttpAsyncHook``.

``HttpAsyncHook`` resolves the connection (base URL, TLS/timeout options, extra headers);
the requests themselves go through one ``aiohttp`` session. This module is only the
transport: login, token reuse, 401 re-login, retries (and their log lines), parsing and error
texts come from the same framework-free core as the worker's ``ClcHook`` (``include.clc``).
Only the login POST and GETs are offered: triggers must have no side effects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import aiohttp
from airflow.providers.http.hooks.http import HttpAsyncHook

from include.clc import endpoints
from include.clc.client import ClientCore, Exchange
from include.clc.endpoints import ApiCall
from include.clc.retry import Answer, Delivery, NoAnswer, Outcome, RetryPolicy
from include.clc.settings import OWN_EXTRA_KEYS, ClcSettings
from include.clc.shapes import QueueStatus
from patchflow.hooks.deployment import DEFAULT_CONN_ID, ClcConnectionAttributes, client_core, token_timer
from patchflow.secrets import amask

T = TypeVar("T")
log = logging.getLogger(__name__)


def _no_auth(*_: Any) -> None:
    """Connection login/password are for the CLC login call, never HTTP basic auth."""
    return None


def _delivery(exc: Exception) -> Delivery:
    """Whether the request can have reached the server (a failed connect: it did not)."""
    never = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
    return Delivery.NEVER_SENT if isinstance(exc, never) else Delivery.MAYBE_SENT


class ClcAsyncHook(ClcConnectionAttributes, HttpAsyncHook):
    """Factory for ``ClcAsyncClient`` sessions from an Airflow HTTP connection."""

    hook_name = "CenturyLink Cloud v2 (async)"

    def __init__(
        self,
        clc_conn_id: str = DEFAULT_CONN_ID,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(method="GET", http_conn_id=clc_conn_id, auth_type=_no_auth, retry_limit=1)
        self.clc_conn_id = clc_conn_id
        self._retry = retry
        self._sleep = sleep
        self._clock = clock

    async def settings(self) -> ClcSettings:
        from airflow.providers.common.compat.connection import get_async_connection

        conn = await get_async_connection(conn_id=self.clc_conn_id, hook=self)
        settings = ClcSettings.from_connection(conn)
        await amask(settings.password)
        return settings

    @asynccontextmanager
    async def client(self) -> AsyncIterator[ClcAsyncClient]:
        from patchflow.tuning import current

        settings = await self.settings()
        config = await self.config()
        headers = {k: v for k, v in (config.headers or {}).items() if k not in OWN_EXTRA_KEYS}
        headers["Accept"] = "application/json"
        timing = current()
        timer = token_timer(timing, self._clock)
        core = client_core(settings, log, timing, retry=self._retry, timer=timer)
        timeout = aiohttp.ClientTimeout(total=settings.timeout)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            yield ClcAsyncClient(session, core, sleep=self._sleep)


class ClcAsyncClient:
    """Read-only CLC calls over one aiohttp session (see ``ClcHook`` for the rules)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        core: ClientCore,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._session, self._core = session, core
        self.settings, self.retry = core.settings, core.retry
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._masked: str | None = None
        self.requests_sent = 0

    @property
    def _token(self) -> str | None:
        return self._core.tokens.token

    async def login(self) -> None:
        login = await self._request(self._core.login_call())
        await amask(login.token)
        self._core.logged_in(login)

    async def _bearer(self) -> str:
        async with self._lock:
            if self._core.tokens.needs_login():
                await self.login()
            assert self._token is not None
            if self._token != self._masked:  # a token from the cache is masked like a fresh one (I6)
                await amask(self._token)
                self._masked = self._token
            return self._token

    async def account_alias(self) -> str:
        if self._core.alias_unknown():
            await self._bearer()
        return self._core.account_alias()

    async def _request(self, call: ApiCall[T]) -> T:
        return (await self._request_dated(call))[0]

    async def _request_dated(self, call: ApiCall[T]) -> tuple[T, datetime | None]:
        """The parsed answer and the API's clock when it answered (``Exchange.answered_at``)."""
        exchange = self._core.exchange(call)
        while exchange.open:
            pause = exchange.observe(await self._send(exchange))
            if pause is not None:
                await self._sleep(pause)
        return exchange.result(), exchange.answered_at

    async def _send(self, exchange: Exchange[Any]) -> Outcome:
        call = exchange.call
        headers = self._core.authorization(await self._bearer()) if call.kind.authenticated else {}
        self.requests_sent += 1
        try:
            async with self._session.request(
                call.method,
                exchange.url,
                params=call.params,
                json=call.body,
                headers=headers,
                allow_redirects=False,
            ) as resp:
                return Answer(
                    resp.status, await resp.read(), resp.headers.get("Retry-After"), resp.headers.get("Date")
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return NoAnswer(_delivery(exc), type(exc).__name__)

    async def get_server(self, alias: str, server_id: str) -> dict:
        return await self._request(endpoints.server(alias, server_id))

    async def get_queue_status(self, alias: str, job_id: str) -> QueueStatus:
        return await self._request(endpoints.queue_status(alias, job_id))

    async def get_patch_summary(self, alias: str, server_id: str) -> list[dict]:
        return await self._request(endpoints.patch_summary(alias, server_id))

    async def get_patch_summary_dated(self, alias: str, server_id: str) -> tuple[list[dict], datetime | None]:
        """The summary and the API's clock when it answered (its ``Date``; None without one)."""
        return await self._request_dated(endpoints.patch_summary(alias, server_id))

    async def get_patch_detail(self, alias: str, server_id: str, execution_id: str) -> dict:
        return await self._request(endpoints.patch_detail(alias, server_id, execution_id))

    async def get_patch_detail_dated(
        self, alias: str, server_id: str, execution_id: str
    ) -> tuple[dict, datetime | None]:
        """The detail and the API's clock when it answered (its ``Date``; None without one)."""
        return await self._request_dated(endpoints.patch_detail(alias, server_id, execution_id))
