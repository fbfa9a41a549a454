"""One login per run against the real simulator: clients of one process and later processes of the
same host reuse the token (include/clc/token_cache.py); a refused token is dropped everywhere."""

from __future__ import annotations

import asyncio
from pathlib import Path

from patchflow.hooks import deployment
from patchflow.hooks.clc import ClcHook
from patchflow.hooks.clc_async import ClcAsyncHook
from tests.plugins.cloud import PASSWORD, Cloud


def new_process() -> None:
    """What a new task process starts with: no process table (the host's files stay)."""
    deployment._CACHES.clear()


async def read_async(times: int) -> None:
    async with ClcAsyncHook().client() as api:
        for _ in range(times):
            await api.get_patch_summary("DEMO", "va1demoweb01")


def files_hold(folder: Path, secret: str) -> bool:
    return any(secret.encode() in f.read_bytes() for f in folder.rglob("*") if f.is_file())


def test_hooks_trigger_clients_and_later_processes_share_one_login(cloud: Cloud, _own_token_cache: Path):
    first = ClcHook()
    first.get_server("DEMO", "va1demoweb01")
    ClcHook().get_server("DEMO", "va1demoweb02")  # another hook of the same process
    asyncio.run(read_async(3))  # a trigger run in the same process
    new_process()
    ClcHook().get_server("DEMO", "va1demoweb01")  # a worker resume
    new_process()
    asyncio.run(read_async(3))  # the triggerer on the same host
    assert cloud.logins == 1
    token = first._token
    assert token and not files_hold(_own_token_cache, token) and not files_hold(_own_token_cache, PASSWORD)


def test_a_revoked_token_is_dropped_and_the_next_process_takes_the_new_one(cloud: Cloud):
    ClcHook().get_server("DEMO", "va1demoweb01")
    cloud.revoke_tokens()
    new_process()
    assert ClcHook().get_server("DEMO", "va1demoweb01")["id"] == "va1demoweb01"  # 401, one new login
    assert cloud.logins == 2
    new_process()
    ClcHook().get_server("DEMO", "va1demoweb02")
    asyncio.run(read_async(1))
    assert cloud.logins == 2


def test_without_the_host_cache_each_process_logs_in_once(cloud: Cloud, monkeypatch):
    monkeypatch.setenv("AIRFLOW__PATCHFLOW__TOKEN_CACHE_DIR", "off")
    ClcHook().get_server("DEMO", "va1demoweb01")
    ClcHook().get_server("DEMO", "va1demoweb01")
    new_process()
    ClcHook().get_server("DEMO", "va1demoweb01")
    assert cloud.logins == 2
