"""The async client used by the trigger against the real simulator: login, token reuse, 401 re-login,
retries, masking."""

from __future__ import annotations

import pytest

from include.clc.retry import RetryPolicy
from patchflow.exceptions import (
    ClcAccessDeniedError,
    ClcApiError,
    ClcAuthError,
    ClcConnectionError,
    ClcLoginRefusedError,
    ClcServiceUnavailableError,
)
from patchflow.hooks.clc_async import ClcAsyncHook
from tests.plugins.cloud import LOGIN, PASSWORD, SUMMARY, Cloud


def make(sleeps: list[float], attempts: int = 3) -> ClcAsyncHook:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    policy = RetryPolicy(attempts=attempts, base=2.0, cap=10.0, rand=lambda: 1.0)
    return ClcAsyncHook(retry=policy, sleep=sleep)


async def test_login_once_and_reuse(cloud):
    async with make([]).client() as api:
        await api.get_patch_summary("DEMO", "va1demoweb01")
        await api.get_patch_summary("DEMO", "va1demoweb02")
        assert await api.account_alias() == "DEMO"
    assert cloud.logins == 1


@pytest.mark.parametrize("offset_days", [-3650, 3650])
async def test_an_api_clock_far_from_ours_costs_one_login(start_cloud, offset_days):
    cloud = start_cloud(api_clock_offset=offset_days * 86400.0)
    async with make([]).client() as api:
        for _ in range(10):
            await api.get_patch_summary("DEMO", "va1demoweb01")
    assert cloud.logins == 1


async def test_relogin_on_401(cloud):
    async with make([]).client() as api:
        await api.get_patch_summary("DEMO", "va1demoweb01")
        cloud.revoke_tokens()
        assert await api.get_patch_summary("DEMO", "va1demoweb01") == []
    assert cloud.logins == 2


async def test_retries_with_backoff_and_retry_after(cloud):
    sleeps: list[float] = []
    cloud.fault(kind="rate_limit", route=SUMMARY, retry_after=4, count=1)
    cloud.fault(kind="error", route=SUMMARY, status=500, count=1)
    async with make(sleeps).client() as api:
        assert await api.get_patch_summary("DEMO", "va1demoweb01") == []
    assert sleeps == [4.0, 4.0]  # Retry-After, then full jitter with rand=1: min(10, 2 * 2**1)
    assert cloud.counted(SUMMARY) == 3


async def test_gives_up_with_a_clean_error(cloud, capsys):
    cloud.fault(kind="error", route=SUMMARY, status=500, count=9)
    async with make([]).client() as api:
        with pytest.raises(
            ClcApiError,
            match=r"GET /patching/rest/servers/DEMO/server/va1demoweb01/patch "
            r"failed with HTTP 500: An error has occurred\.",
        ):
            await api.get_patch_summary("DEMO", "va1demoweb01")
        token = api._token
    out = capsys.readouterr()
    assert token not in out.out + out.err and PASSWORD not in out.out + out.err


async def test_connection_errors_are_bounded(cloud):
    cloud.stop()
    async with make([], attempts=2).client() as api:
        with pytest.raises(ClcConnectionError, match="after 2 attempts"):
            await api.get_queue_status("DEMO", "va1-1")


def login_posts(cloud: Cloud) -> int:
    return len(cloud.sent(method="POST", containing="/authentication/login"))


async def test_a_refused_login_is_tried_once(cloud, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", cloud.conn_json().replace(PASSWORD, "wrong-password-1"))
    async with make(sleeps).client() as api:
        with pytest.raises(ClcLoginRefusedError, match="HTTP 400"):
            await api.get_patch_summary("DEMO", "va1demoweb01")
    assert login_posts(cloud) == 1 and sleeps == []


async def test_a_login_503_is_service_unavailable_not_a_wrong_password(cloud):
    sleeps: list[float] = []
    cloud.fault(kind="error", route=LOGIN, status=503, count=9)
    async with make(sleeps).client() as api:
        with pytest.raises(ClcServiceUnavailableError, match="service unavailable") as err:
            await api.get_patch_summary("DEMO", "va1demoweb01")
    assert not isinstance(err.value, ClcAuthError)
    assert login_posts(cloud) == 3 and len(sleeps) == 2


async def test_a_forbidden_alias_is_an_access_error(cloud):
    async with make([]).client() as api:
        with pytest.raises(ClcAccessDeniedError, match="HTTP 403"):
            await api.get_patch_summary("OTHR", "va1demoweb01")


@pytest.mark.parametrize("offset_days", [-3650, 0])
async def test_a_dated_summary_carries_the_api_clock_not_ours(start_cloud, offset_days):
    """The ``Date`` header is where the API's clock stood; the read schedule subtracts API times
    from it and never compares it with ours (I8)."""
    cloud = start_cloud(api_clock_offset=offset_days * 86400.0)
    async with make([]).client() as api:
        before = cloud.sim.now()
        summary, api_now = await api.get_patch_summary_dated("DEMO", "va1demoweb01")
        after = cloud.sim.now()
    assert isinstance(summary, list) and api_now is not None
    assert before - 1.0 <= api_now.timestamp() <= after  # whole seconds, within the round trip
