"""The token cache: encrypted, private, timed on our wall clock, dropped on a 401 (no Airflow)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from include.clc.shapes import Login
from include.clc.token_cache import CachedToken, CacheKey, SharedTokenState, TokenCache
from include.clc.tokens import TokenTimer

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpYXQiOjEsImV4cCI6MzYwMX0.c2VjcmV0LXNpZ25hdHVyZQ"  # 1 h lifetime
PASSWORD = "s3cret-password"
KEY = CacheKey.of("http://127.0.0.1:1/v2", "demo.admin", PASSWORD)


class Wall:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def entry(received_at: float = 1_000_000.0, usable_for: float = 3000.0, token: str = TOKEN) -> CachedToken:
    return CachedToken(token, "DEMO", received_at, usable_for)


def another_process(folder: Path, wall: Wall) -> TokenCache:
    """A new process on the same host: same folder, empty memory."""
    return TokenCache(folder, wall=wall)


def test_the_file_holds_the_token_encrypted_and_private(tmp_path):
    folder, wall = tmp_path / "cache", Wall()
    TokenCache(folder, wall=wall).put(KEY, PASSWORD, entry())
    (file,) = folder.iterdir()
    raw = file.read_bytes()
    assert TOKEN.encode() not in raw and PASSWORD.encode() not in raw
    assert TOKEN.split(".")[2].encode() not in raw  # not even the signature part
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    hit = another_process(folder, wall).get(KEY, PASSWORD)
    assert hit is not None and hit.token == TOKEN and hit.alias == "DEMO"


def test_another_password_cannot_read_it(tmp_path):
    folder, wall = tmp_path / "cache", Wall()
    TokenCache(folder, wall=wall).put(KEY, PASSWORD, entry())
    other = CacheKey.of(KEY.base_url, KEY.login, "another-password")
    assert another_process(folder, wall).get(other, "another-password") is None


def test_a_prolonged_entry_is_refused(tmp_path):
    """The lifetime is authenticated with the token: editing it breaks the decryption."""
    folder, wall = tmp_path / "cache", Wall()
    TokenCache(folder, wall=wall).put(KEY, PASSWORD, entry(usable_for=10.0))
    (file,) = folder.iterdir()
    body = json.loads(file.read_text())
    file.write_text(json.dumps(body | {"usable_for": 10_000.0}))
    wall.now += 100
    assert another_process(folder, wall).get(KEY, PASSWORD) is None


@pytest.mark.parametrize(("moved", "usable"), [(2999.0, True), (3000.0, False), (-1.0, False)])
def test_lifetime_on_our_wall_clock(tmp_path, moved, usable):
    """Past its time, or received "in the future" (our clock went back): not used."""
    folder, wall = tmp_path / "cache", Wall()
    TokenCache(folder, wall=wall).put(KEY, PASSWORD, entry(usable_for=3000.0))
    wall.now += moved
    assert (another_process(folder, wall).get(KEY, PASSWORD) is not None) is usable


def test_a_folder_open_to_others_is_not_used(tmp_path):
    folder, wall = tmp_path / "cache", Wall()
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    cache = TokenCache(folder, wall=wall)
    cache.put(KEY, PASSWORD, entry())
    assert list(folder.iterdir()) == []  # nothing written there
    assert cache.get(KEY, PASSWORD) is not None  # the process table still works
    assert another_process(folder, wall).get(KEY, PASSWORD) is None


def test_a_file_open_to_others_is_not_read(tmp_path):
    folder, wall = tmp_path / "cache", Wall()
    TokenCache(folder, wall=wall).put(KEY, PASSWORD, entry())
    (file,) = folder.iterdir()
    os.chmod(file, 0o644)
    assert another_process(folder, wall).get(KEY, PASSWORD) is None


def state(folder: Path, wall: Wall, clock: list[float]) -> SharedTokenState:
    timer = TokenTimer(time_scale=1.0, margin=300.0, clock=lambda: clock[0])
    return SharedTokenState(timer=timer, cache=TokenCache(folder, wall=wall), key=KEY, password=PASSWORD)


def test_a_state_takes_the_cached_token_and_renews_when_the_cache_says(tmp_path):
    folder, wall, clock = tmp_path / "cache", Wall(), [0.0]
    first = state(folder, wall, clock)
    assert first.needs_login()
    first.store(Login(token=TOKEN, alias="DEMO"))  # 3600 s lifetime - 300 s margin
    wall.now += 1000
    second = state(folder, wall, [500.0])  # a new process: its own monotonic clock
    assert not second.needs_login() and second.token == TOKEN and second.login_alias == "DEMO"
    assert second.timer.renew_at == pytest.approx(500.0 + 3300.0 - 1000.0)


def test_a_refused_token_is_dropped_from_both_levels(tmp_path):
    folder, wall, clock = tmp_path / "cache", Wall(), [0.0]
    first = state(folder, wall, clock)
    first.store(Login(token=TOKEN, alias="DEMO"))
    first.forget()  # what the client does on a 401
    assert first.needs_login()
    assert list(folder.iterdir()) == []
    assert state(folder, wall, clock).needs_login()


def test_a_refused_token_does_not_drop_a_newer_one(tmp_path):
    folder, wall, clock = tmp_path / "cache", Wall(), [0.0]
    old = state(folder, wall, clock)
    old.store(Login(token=TOKEN, alias="DEMO"))
    newer = state(folder, wall, clock)
    newer.store(Login(token=TOKEN + "x", alias="DEMO"))
    old.forget()
    fresh = state(folder, wall, clock)
    assert not fresh.needs_login() and fresh.token == TOKEN + "x"
