"""One CLC login per run: the bearer token shared by clients, trigger runs and task processes.

A CLC token lasts two weeks, yet every client used to log in for itself: each worker resume of a
rollout (a new process) and each trigger run. Two levels of reuse, both keyed by the API's base
URL, the login and the password (a password change is a different key, never a stale token):

- **process**: one in-memory table per process. The triggerer is one long-lived process, so all
  its trigger runs share one login; the hooks of one task process share one too.
- **host**: one file per (base URL, login) in a private folder (created 0700, used only if it is
  owned by this user and closed to everyone else), written 0600 and atomically, holding the token
  **encrypted** (AES-GCM) with a key derived from the connection's password (PBKDF2-HMAC-SHA256,
  a random salt per file): whoever can decrypt it already holds the password, so the file adds
  nothing to what a reader of the connection has (I6: no token in clear anywhere). Each worker
  resume reads it instead of logging in.

Lifetimes are measured on our wall clock (I8): the entry says when we received the token and for
how long it may be used (the ``TokenTimer``'s renewal delay); an entry from the future (a clock
set back) or past its time is ignored. A 401 drops the refused token from both levels.
Framework-free: no Airflow imports (``patchflow.hooks.deployment`` configures it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.clc.shapes import Login
from include.clc.tokens import TokenState

log = logging.getLogger(__name__)

FILE_VERSION = 1
KDF_ITERATIONS = 200_000


@dataclass(frozen=True)
class CacheKey:
    """Which credentials a token belongs to; the password only as a hash, and only in memory."""

    base_url: str
    login: str
    password_sha256: str = field(repr=False)

    @classmethod
    def of(cls, base_url: str, login: str, password: str) -> CacheKey:
        return cls(base_url, login, hashlib.sha256(password.encode()).hexdigest())

    def file_name(self) -> str:
        """Without the password: a new password overwrites the old entry (which it cannot read)."""
        return hashlib.sha256(f"{self.base_url}\0{self.login}".encode()).hexdigest()[:32] + ".token"


@dataclass(frozen=True)
class CachedToken:
    token: str = field(repr=False)
    alias: str | None
    received_at: float
    """Our wall clock (``time.time()``) when the login answered."""
    usable_for: float
    """Seconds after ``received_at`` during which the token is used (then: a new login)."""

    def remaining(self, now: float) -> float | None:
        """Seconds it may still be used, or None (expired, or received "in the future")."""
        age = now - self.received_at
        if age < 0 or age >= self.usable_for:
            return None
        return self.usable_for - age


class TokenCache:
    """The process table plus, when ``folder`` is given, the host's encrypted files."""

    def __init__(self, folder: Path | None, *, wall: Callable[[], float] = time.time) -> None:
        self.folder, self.wall = folder, wall
        self._memory: dict[CacheKey, CachedToken] = {}
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, bytes], bytes] = {}

    # --- the two levels --------------------------------------------------------------------

    def get(self, key: CacheKey, password: str) -> CachedToken | None:
        now = self.wall()
        with self._lock:
            hit = self._memory.get(key)
            if hit is not None and hit.remaining(now) is not None:
                return hit
            self._memory.pop(key, None)
        found = self._read(key, password)
        if found is None or found.remaining(now) is None:
            return None
        with self._lock:
            self._memory[key] = found
        return found

    def put(self, key: CacheKey, password: str, entry: CachedToken) -> None:
        with self._lock:
            self._memory[key] = entry
        self._write(key, password, entry)

    def drop(self, key: CacheKey, password: str, token: str) -> None:
        """Forget ``token`` (refused with a 401); a newer token stored meanwhile is kept."""
        with self._lock:
            if (hit := self._memory.get(key)) is not None and hit.token == token:
                del self._memory[key]
        path = self._file(key)
        if path is not None and path.exists():
            stored = self._read(key, password)
            if stored is None or stored.token == token:
                path.unlink(missing_ok=True)

    def clear_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    # --- the private folder ----------------------------------------------------------------

    def _file(self, key: CacheKey) -> Path | None:
        """The key's file, or None when there is no folder or it is not private to this user."""
        if self.folder is None:
            return None
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            st = os.lstat(self.folder)
        except OSError as exc:
            log.warning("token cache folder %s unusable (%s); logging in per process", self.folder, exc)
            return None
        private = stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077
        if not private:
            log.warning(
                "token cache folder %s is not a folder private to this user (mode %o); not used",
                self.folder,
                stat.S_IMODE(st.st_mode),
            )
            return None
        return self.folder / key.file_name()

    def _write(self, key: CacheKey, password: str, entry: CachedToken) -> None:
        path = self._file(key)
        if path is None:
            return
        salt, nonce = os.urandom(16), os.urandom(12)
        secret = json.dumps({"token": entry.token, "alias": entry.alias}).encode()
        sealed = _aead(self._key(password, salt)).encrypt(nonce, secret, _bound(key, entry))
        body = {
            "version": FILE_VERSION,
            "kdf": "pbkdf2-sha256",
            "iterations": KDF_ITERATIONS,
            "salt": _b64(salt),
            "nonce": _b64(nonce),
            "ciphertext": _b64(sealed),
            "received_at": entry.received_at,
            "usable_for": entry.usable_for,
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(body, fh)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("token cache file not written (%s); the token stays in memory only", exc)
        finally:
            tmp.unlink(missing_ok=True)

    def _read(self, key: CacheKey, password: str) -> CachedToken | None:
        path = self._file(key)
        body = _load_private(path) if path is not None else None
        if body is None:
            return None
        try:
            salt, nonce = _unb64(body["salt"]), _unb64(body["nonce"])
            shell = CachedToken("", None, float(body["received_at"]), float(body["usable_for"]))
            plain = _aead(self._key(password, salt)).decrypt(
                nonce, _unb64(body["ciphertext"]), _bound(key, shell)
            )
            data = json.loads(plain)
            return CachedToken(str(data["token"]), data.get("alias"), shell.received_at, shell.usable_for)
        except Exception:  # another password, a damaged or foreign file: not ours to use
            return None

    def _key(self, password: str, salt: bytes) -> bytes:
        """PBKDF2 once per (password, salt) in this process."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

        memo = (hashlib.sha256(password.encode()).hexdigest(), salt)
        if memo not in self._keys:
            kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=KDF_ITERATIONS)
            self._keys[memo] = kdf.derive(password.encode())
        return self._keys[memo]


def _aead(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _bound(key: CacheKey, entry: CachedToken) -> bytes:
    """Authenticated, not secret: the entry cannot be moved to other credentials or prolonged."""
    return f"{key.base_url}\0{key.login}\0{entry.received_at!r}\0{entry.usable_for!r}".encode()


def _load_private(path: Path) -> dict[str, Any] | None:
    """The file's JSON if it is a regular file of ours that nobody else can read or write."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) and body.get("version") == FILE_VERSION else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode())


@dataclass
class SharedTokenState(TokenState):
    """A client's ``TokenState`` that takes its token from the cache before logging in, puts a
    fresh one there, and drops a refused one. The client's own timer still decides renewal."""

    cache: TokenCache | None = None
    key: CacheKey | None = None
    password: str = field(default="", repr=False)

    def needs_login(self) -> bool:
        if self.token is None and self.cache is not None and self.key is not None:
            hit = self.cache.get(self.key, self.password)
            remaining = hit.remaining(self.cache.wall()) if hit is not None else None
            if hit is not None and remaining is not None:
                self.token, self.login_alias = hit.token, hit.alias
                self.timer.renew_at = self.timer.clock() + remaining
        return super().needs_login()

    def store(self, login: Login) -> None:
        super().store(login)
        if self.cache is None or self.key is None or self.timer.renew_at is None:
            return
        usable_for = max(self.timer.renew_at - self.timer.clock(), 0.0)
        self.cache.put(
            self.key, self.password, CachedToken(login.token, login.alias, self.cache.wall(), usable_for)
        )

    def forget(self) -> None:
        if self.token is not None and self.cache is not None and self.key is not None:
            self.cache.drop(self.key, self.password, self.token)
        super().forget()
