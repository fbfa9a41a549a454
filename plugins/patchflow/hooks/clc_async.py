"""Async CLC client for the triggerer, built on the HTTP provider's ``HttpAsyncHook``.

``HttpAsyncHook`` resolves the connection (base URL, TLS/timeout options, extra headers);
the requests themselves go through one ``aiohttp`` session with the same login, token
reuse, 401 re-login and full-jitter retry rules as the sync hook. Only the login POST and
GETs are offered: triggers must have no side effects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from airflow.providers.http.hooks.http import HttpAsyncHook

from include.patching import api_shapes as shapes
from include.patching.backoff import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    TokenTimer,
    parse_retry_after,
)
from include.patching.clc_errors import (
    ClcConnectionError,
    ClcResponseError,
    error_type_for,
)
from patchflow.hooks.settings import OWN_EXTRA_KEYS, ClcSettings, api_message, retry_policy, scrub
from patchflow.secrets import amask


def _no_auth(*_: Any) -> None:
    """Connection login/password are for the CLC login call, never HTTP basic auth."""
    return None


def _seg(value: str) -> str:
    return quote(str(value), safe="")


class ClcAsyncHook(HttpAsyncHook):
    """Factory for ``ClcAsyncClient`` sessions from an Airflow HTTP connection."""

    conn_name_attr = "clc_conn_id"
    default_conn_name = "clc_default"
    hook_name = "CenturyLink Cloud v2 (async)"

    def __init__(
        self,
        clc_conn_id: str = default_conn_name,
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
        settings = await self.settings()
        config = await self.config()
        headers = {k: v for k, v in (config.headers or {}).items() if k not in OWN_EXTRA_KEYS}
        headers["Accept"] = "application/json"
        from patchflow.tuning import current, time_scale

        timing = current()
        policy = self._retry or retry_policy(settings, timing)
        timer = TokenTimer(time_scale(), timing.token_refresh_margin, self._clock)
        timeout = aiohttp.ClientTimeout(total=settings.timeout)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            yield ClcAsyncClient(session, settings, policy, sleep=self._sleep, token_timer=timer)


class ClcAsyncClient:
    """Read-only CLC calls over one aiohttp session (see ``ClcHook`` for the rules)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: ClcSettings,
        retry: RetryPolicy,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        token_timer: TokenTimer | None = None,
    ) -> None:
        self._session, self.settings, self.retry = session, settings, retry
        self._sleep = sleep
        self._token_timer = token_timer or TokenTimer()
        self._token: str | None = None
        self._login_alias: str | None = None
        self._lock = asyncio.Lock()
        self.requests_sent = 0

    async def login(self) -> None:
        s = self.settings
        body = await self._request(
            "POST",
            s.base_url,
            "authentication/login",
            json={"username": s.login, "password": s.password},
            authenticated=False,
        )
        token, alias = shapes.parse_login(body, "POST /v2/authentication/login")
        await amask(token)
        self._token, self._login_alias = token, alias
        self._token_timer.received(token)

    async def _bearer(self) -> str:
        async with self._lock:
            if self._token is None or self._token_timer.due():
                await self.login()
            assert self._token is not None
            return self._token

    async def account_alias(self) -> str:
        if self.settings.account_alias:
            return self.settings.account_alias
        if self._login_alias is None:
            await self._bearer()
        if not self._login_alias:
            raise ClcResponseError("POST /v2/authentication/login", "no accountAlias and none configured")
        return self._login_alias

    async def _request(
        self,
        method: str,
        root: str,
        path: str,
        *,
        params: dict | None = None,
        json: Any = None,
        authenticated: bool = True,
    ) -> Any:
        url = f"{root}/{path.lstrip('/')}"
        shown = urlsplit(url).path
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            headers = {"Authorization": f"Bearer {await self._bearer()}"} if authenticated else {}
            try:
                self.requests_sent += 1
                async with self._session.request(
                    method, url, params=params, json=json, headers=headers, allow_redirects=False
                ) as resp:
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
                    raw = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt >= self.retry.attempts:
                    reason = f"{type(exc).__name__} after {attempt} attempts"
                    raise ClcConnectionError(method, shown, reason) from None
                await self._sleep(self.retry.delay(attempt))
                continue
            if status == 401 and authenticated and not relogged:
                relogged, attempt = True, attempt - 1
                async with self._lock:
                    self._token = None
                continue
            if status in RETRYABLE_STATUSES and attempt < self.retry.attempts:
                hint = parse_retry_after(retry_after) if status in (429, 503) else None
                await self._sleep(self.retry.delay(attempt, hint))
                continue
            body = _json(raw, status, f"{method} {shown}")
            if status >= 400:
                kind = error_type_for(status, login=not authenticated)
                message = scrub(api_message(body), [self.settings.password, self._token])
                raise kind(method, shown, status, message)
            return body

    async def get_queue_status(self, alias: str, job_id: str) -> str:
        path = f"operations/{_seg(alias)}/status/{_seg(job_id)}"
        body = await self._request("GET", self.settings.base_url, path)
        return shapes.parse_queue_status(body, f"GET /v2/{path}")

    async def get_patch_summary(self, alias: str, server_id: str) -> list[dict]:
        path = f"servers/{_seg(alias)}/server/{_seg(server_id)}/patch"
        body = await self._request("GET", self.settings.patching_base_url, path)
        return shapes.parse_summary(body or [], f"GET patching {path}")

    async def get_patch_detail(self, alias: str, server_id: str, execution_id: str) -> dict:
        path = f"servers/{_seg(alias)}/server/{_seg(server_id)}/patch/{_seg(execution_id)}"
        body = await self._request("GET", self.settings.patching_base_url, path)
        return shapes.parse_detail(body, f"GET patching {path}")


def _json(raw: bytes, status: int, endpoint: str) -> Any:
    import json

    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        if status >= 400:
            return None
        raise ClcResponseError(endpoint, "body is not JSON") from None
