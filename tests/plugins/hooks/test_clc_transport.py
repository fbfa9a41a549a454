"""What each transport hands the core: whether a failed request can have reached the server, and
that the async client logs its retries like the sync hook."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator

import aiohttp
import pytest
import requests

from include.clc.retry import Delivery, RetryPolicy
from patchflow.exceptions import ClcConnectionError
from patchflow.hooks import clc, clc_async
from patchflow.hooks.clc import ClcHook
from patchflow.hooks.clc_async import ClcAsyncHook
from tests.plugins.cloud import SUMMARY


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connecting is refused before anything is sent."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts the connection, reads the request and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                accepted.append(server.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in accepted:
        conn.close()


def sync_failure(url: str) -> requests.RequestException:
    with pytest.raises(requests.RequestException) as err:
        requests.post(url, json={}, timeout=0.3)
    return err.value


def test_sync_refused_connection_was_never_sent(closed_port):
    assert clc._delivery(sync_failure(f"http://127.0.0.1:{closed_port}/x")) is Delivery.NEVER_SENT


def test_sync_timeout_after_sending_may_have_been_processed(silent_port):
    exc = sync_failure(f"http://127.0.0.1:{silent_port}/x")
    assert isinstance(exc, requests.ReadTimeout)
    assert clc._delivery(exc) is Delivery.MAYBE_SENT


async def async_failure(url: str) -> Exception:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as session:
        with pytest.raises((aiohttp.ClientError, asyncio.TimeoutError)) as err:
            async with session.get(url) as resp:
                await resp.read()
    return err.value


async def test_async_refused_connection_was_never_sent(closed_port):
    exc = await async_failure(f"http://127.0.0.1:{closed_port}/x")
    assert clc_async._delivery(exc) is Delivery.NEVER_SENT


async def test_async_timeout_after_sending_may_have_been_processed(silent_port):
    assert (
        clc_async._delivery(await async_failure(f"http://127.0.0.1:{silent_port}/x")) is Delivery.MAYBE_SENT
    )


def test_execute_package_refused_before_sending_is_retried_not_possibly_submitted(cloud):
    sleeps: list[float] = []
    h = ClcHook(retry=RetryPolicy(attempts=3, base=1.0, cap=8.0, sleep=sleeps.append, rand=lambda: 0.5))
    h.login()
    cloud.stop()
    h._session().close()  # no kept-alive connection: every attempt must connect anew
    with pytest.raises(ClcConnectionError, match="after 3 attempts"):
        h.execute_package("DEMO", ["va1demoweb01"], "pkg")
    assert sleeps == [0.5, 1.0] and cloud.executions_started("va1demoweb01") == 0
    assert cloud.sent(containing="executePackage") == []


async def test_the_async_client_logs_its_retries_like_the_sync_hook(cloud, caplog):
    caplog.set_level(logging.INFO, logger="patchflow.hooks.clc_async")

    async def no_sleep(_: float) -> None:
        return None

    cloud.fault(kind="rate_limit", route=SUMMARY, retry_after=4, count=1)
    hook = ClcAsyncHook(retry=RetryPolicy(attempts=3, base=2.0, cap=10.0, rand=lambda: 1.0), sleep=no_sleep)
    async with hook.client() as api:
        assert await api.get_patch_summary("DEMO", "va1demoweb01") == []
    assert (
        "GET /patching/rest/servers/DEMO/server/va1demoweb01/patch: HTTP 429; retry 1/2 in 4.0s"
        in caplog.text
    )
    assert "Logged in to CLC as demo.admin" in caplog.text
