"""Synchronous CLC v2 hook for worker-side calls, built on the HTTP provider's ``HttpHook``.

Why not plain ``HttpHook.run``: the CLC API wants a bearer token from its own login call
(not basic auth), the connection extra carries keys that must never become headers, and
"execute package" must not be replayed when its answer is lost (invariant I1). This hook
keeps HttpHook's session configuration (proxies, TLS, keep-alive, timeout from the
connection) and adds login/token reuse, bounded retries with full-jitter backoff and
response validation. Secrets are registered with Airflow's masker and never put into log
lines or exception text (I6).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests import Request, Session
from urllib3.exceptions import ConnectTimeoutError

from include.patching import api_shapes as shapes
from include.patching.api_shapes import BatchItem
from include.patching.backoff import (
    NOT_PROCESSED_STATUSES,
    RETRYABLE_STATUSES,
    RetryPolicy,
    TokenTimer,
    parse_retry_after,
)
from include.patching.clc_errors import (
    ClcApiError,
    ClcConnectionError,
    ClcResponseError,
    PossiblySubmittedError,
    error_type_for,
)
from include.patching.scope import walk_groups
from include.patching.tuning import Tuning
from patchflow.hooks.settings import OWN_EXTRA_KEYS, ClcSettings, api_message, retry_policy, scrub
from patchflow.secrets import mask

V2, PATCHING = "v2", "patching"


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly did not reach the server (refused/connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        return isinstance(getattr(exc.args[0], "reason", None), ConnectTimeoutError)
    return False


def _seg(value: str) -> str:
    return quote(str(value), safe="")


class ClcHook(HttpHook):
    """CenturyLink Cloud v2 + Patching-as-a-Service client.

    :param clc_conn_id: HTTP connection with ``host`` = API root (``https://api.ctl.io/v2``),
        login/password, and extra ``account_alias``, ``patching_base_url``, ``timeout``,
        ``retry_attempts``, ``retry_base``, ``retry_cap``.
    :param retry: override the retry policy (tests inject ``sleep``/``rand``).
    :param clock: monotonic clock measuring the token's age (never compared with the API's).
    """

    conn_name_attr = "clc_conn_id"
    default_conn_name = "clc_default"
    conn_type = "http"
    hook_name = "CenturyLink Cloud v2"

    def __init__(
        self,
        clc_conn_id: str = default_conn_name,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(method="GET", http_conn_id=clc_conn_id)
        self.clc_conn_id = clc_conn_id
        self._retry_override = retry
        self._clock = clock
        self._token: str | None = None
        self._login_alias: str | None = None
        self._auth_lock = threading.Lock()
        self._http: Session | None = None

    # --- configuration -------------------------------------------------------------------

    @cached_property
    def settings(self) -> ClcSettings:
        settings = ClcSettings.from_connection(self.get_connection(self.clc_conn_id))
        mask(settings.password)
        return settings

    @cached_property
    def timing(self) -> Tuning:
        from patchflow.tuning import current

        return current()

    @cached_property
    def retry(self) -> RetryPolicy:
        return self._retry_override or retry_policy(self.settings, self.timing)

    @cached_property
    def _token_timer(self) -> TokenTimer:
        from patchflow.tuning import time_scale

        return TokenTimer(time_scale(), self.timing.token_refresh_margin, self._clock)

    def _configure_session_from_auth(self, session: Session, connection: Any) -> Session:
        # Never basic auth: the bearer token is added per request.
        session.auth = None
        return session

    def _configure_session_from_extra(
        self, session: Session, connection: Any, extra_options: dict
    ) -> Session:
        session = super()._configure_session_from_extra(session, connection, extra_options)
        for key in OWN_EXTRA_KEYS:
            session.headers.pop(key, None)
        return session

    def _session(self) -> Session:
        # One requests.Session per hook (connection pooling); urllib3's pool is thread-safe
        # for the concurrent GETs of ``inventory``.
        if self._http is None:
            self.settings  # noqa: B018 - resolve and mask before any request
            self._http = self.get_conn(headers={"Accept": "application/json"})
        return self._http

    # --- auth ----------------------------------------------------------------------------

    def login(self) -> None:
        """``POST authentication/login``; stores and masks the bearer token."""
        s = self.settings
        body = self._request(
            "POST",
            V2,
            "authentication/login",
            json={"username": s.login, "password": s.password},
            authenticated=False,
        )
        token, alias = shapes.parse_login(body, "POST /v2/authentication/login")
        mask(token)
        self._token, self._login_alias = token, alias
        self._token_timer.received(token)
        self.log.info("Logged in to CLC as %s (alias %s)", s.login, alias)

    def authenticate(self) -> None:
        """Log in now unless a valid token is held, so a refused login fails a task before it
        changes anything (and the rollout never records it as a per-server failure)."""
        self._bearer()

    def _bearer(self) -> str:
        with self._auth_lock:
            if self._token is None or self._token_timer.due():
                self.login()
            assert self._token is not None
            return self._token

    @property
    def account_alias(self) -> str:
        """The connection's ``account_alias``, else the alias returned by login."""
        if self.settings.account_alias:
            return self.settings.account_alias
        if self._login_alias is None:
            self._bearer()
        if not self._login_alias:
            raise ClcResponseError("POST /v2/authentication/login", "no accountAlias and none configured")
        return self._login_alias

    # --- transport -----------------------------------------------------------------------

    def _url(self, base: str, path: str) -> str:
        root = self.settings.base_url if base == V2 else self.settings.patching_base_url
        return f"{root}/{path.lstrip('/')}"

    def _fail(
        self, exc_type: type[ClcApiError], method: str, path: str, status: int, body: Any
    ) -> ClcApiError:
        message = scrub(api_message(body), [self.settings.password, self._token])
        return exc_type(method, path, status, message)

    def _request(
        self,
        method: str,
        base: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        authenticated: bool = True,
        idempotent: bool = True,
        batch: bool = False,
    ) -> Any:
        """Send one logical request with retries; return the parsed JSON body (None if empty).

        Retried: connection errors/timeouts, 429 (Retry-After honoured), 500/502/503/504.
        For ``idempotent=False`` only 429/503 and "never sent" connection failures are
        retried; anything that may have been processed raises ``PossiblySubmittedError``.
        A 401 triggers one fresh login. ``batch=True`` returns a 400 whose body is the
        per-server array (the API refuses a batch that way when nothing could be queued).
        """
        url = self._url(base, path)
        shown = urlsplit(url).path
        session = self._session()
        policy = self.retry
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            headers = {"Accept": "application/json"}
            if authenticated:
                headers["Authorization"] = f"Bearer {self._bearer()}"
            prepped = session.prepare_request(Request(method, url, params=params, json=json, headers=headers))
            try:
                resp = session.send(prepped, timeout=self.settings.timeout, allow_redirects=False)
            except requests.RequestException as exc:
                reason = type(exc).__name__
                if not idempotent and not _never_sent(exc):
                    raise PossiblySubmittedError(method, shown, reason) from None
                if attempt >= policy.attempts:
                    raise ClcConnectionError(method, shown, f"{reason} after {attempt} attempts") from None
                wait = policy.delay(attempt)
                self.log.warning(
                    "%s %s: %s; retry %d/%d in %.1fs",
                    method,
                    shown,
                    reason,
                    attempt,
                    policy.attempts - 1,
                    wait,
                )
                policy.sleep(wait)
                continue
            status = resp.status_code
            if status == 401 and authenticated and not relogged:
                relogged = True
                attempt -= 1
                self.log.info("%s %s: token refused (401), logging in again", method, shown)
                with self._auth_lock:
                    self._token = None
                continue
            retryable = RETRYABLE_STATUSES if idempotent else NOT_PROCESSED_STATUSES
            if status in retryable and attempt < policy.attempts:
                hint = parse_retry_after(resp.headers.get("Retry-After")) if status in (429, 503) else None
                wait = policy.delay(attempt, hint)
                self.log.warning(
                    "%s %s: HTTP %d; retry %d/%d in %.1fs",
                    method,
                    shown,
                    status,
                    attempt,
                    policy.attempts - 1,
                    wait,
                )
                policy.sleep(wait)
                continue
            body = self._body(resp, method, shown)
            if status >= 400:
                if not idempotent and status >= 500 and status not in NOT_PROCESSED_STATUSES:
                    raise PossiblySubmittedError(method, shown, f"HTTP {status}")
                if batch and status == 400 and isinstance(body, list):
                    return body
                kind = error_type_for(status, login=not authenticated)
                raise self._fail(kind, method, shown, status, body)
            return body

    @staticmethod
    def _body(resp: requests.Response, method: str, shown: str) -> Any:
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            if resp.status_code >= 400:
                return None
            raise ClcResponseError(f"{method} {shown}", "body is not JSON") from None

    # --- API -----------------------------------------------------------------------------

    def list_datacenters(self, alias: str) -> list[dict]:
        path = f"datacenters/{_seg(alias)}"
        return shapes.parse_datacenters(self._request("GET", V2, path), f"GET /v2/{path}")

    def get_datacenter(self, alias: str, dc: str, group_links: bool = True) -> dict:
        path = f"datacenters/{_seg(alias)}/{_seg(dc)}"
        body = self._request("GET", V2, path, params={"groupLinks": str(group_links).lower()})
        shapes.field(shapes.expect(body, dict, f"GET /v2/{path}"), "id", str, f"GET /v2/{path}")
        return body

    def get_group(self, alias: str, group_id: str, detailed: bool = True) -> dict:
        path = f"groups/{_seg(alias)}/{_seg(group_id)}"
        params = {"serverDetail": "detailed"} if detailed else None
        return shapes.parse_group(self._request("GET", V2, path, params=params), f"GET /v2/{path}")

    def get_server(self, alias: str, server_id: str) -> dict:
        path = f"servers/{_seg(alias)}/{_seg(server_id)}"
        return shapes.parse_server(self._request("GET", V2, path), f"GET /v2/{path}")

    def _batch(self, alias: str, op: str, body: Any, *, idempotent: bool = True) -> list[BatchItem]:
        path = f"operations/{_seg(alias)}/servers/{op}"
        answer = self._request("POST", V2, path, json=body, idempotent=idempotent, batch=True)
        return shapes.parse_batch(answer, f"POST /v2/{path}")

    def start_maintenance(self, alias: str, ids: Iterable[str]) -> list[BatchItem]:
        """Idempotent on the platform (already-in-maintenance → ``isQueued: false``), so retried."""
        return self._batch(alias, "startMaintenance", list(ids))

    def stop_maintenance(self, alias: str, ids: Iterable[str]) -> list[BatchItem]:
        return self._batch(alias, "stopMaintenance", list(ids))

    def execute_package(
        self, alias: str, ids: Iterable[str], package_id: str, parameters: dict[str, str] | None = None
    ) -> list[BatchItem]:
        """Execute a package on servers. Never replayed once it may have been processed:
        raises ``PossiblySubmittedError`` instead (the caller reconciles, I1)."""
        body = {"servers": list(ids), "package": {"packageId": package_id, "parameters": parameters or {}}}
        return self._batch(alias, "executePackage", body, idempotent=False)

    def get_queue_status(self, alias: str, job_id: str) -> str:
        path = f"operations/{_seg(alias)}/status/{_seg(job_id)}"
        return shapes.parse_queue_status(self._request("GET", V2, path), f"GET /v2/{path}")

    def get_patch_summary(self, alias: str, server_id: str) -> list[dict]:
        path = f"servers/{_seg(alias)}/server/{_seg(server_id)}/patch"
        return shapes.parse_summary(self._request("GET", PATCHING, path) or [], f"GET patching {path}")

    def get_patch_detail(self, alias: str, server_id: str, execution_id: str) -> dict:
        path = f"servers/{_seg(alias)}/server/{_seg(server_id)}/patch/{_seg(execution_id)}"
        return shapes.parse_detail(self._request("GET", PATCHING, path), f"GET patching {path}")

    def wait_for_job(
        self,
        alias: str,
        job_id: str,
        *,
        timeout: float | None = None,
        interval: float | None = None,
        cap: float | None = None,
    ) -> str:
        """Poll a queue job until terminal or ``timeout``; returns the last status seen.

        A 500 while polling is tolerated (the Python SDK does the same). Defaults: the
        deployment's ``maintenance_timeout``/``job_poll_interval``/``job_poll_cap``.
        """
        timeout = self.timing.maintenance_timeout if timeout is None else timeout
        interval = self.timing.job_poll_interval if interval is None else interval
        cap = self.timing.job_poll_cap if cap is None else cap
        deadline = time.monotonic() + timeout
        status = "notStarted"
        while True:
            try:
                status = self.get_queue_status(alias, job_id)
            except (ClcApiError, ClcConnectionError) as exc:
                if isinstance(exc, ClcApiError) and exc.status not in (500, 502, 503, 504):
                    raise
                self.log.warning("queue job %s: %s (still polling)", job_id, exc)
            if status == shapes.QUEUE_SUCCEEDED or status in shapes.QUEUE_FAILED:
                return status
            if time.monotonic() + interval > deadline:
                return status
            self.retry.sleep(interval)
            interval = min(interval * 1.5, cap)

    # --- inventory -----------------------------------------------------------------------

    def group_trees(
        self,
        alias: str,
        data_centers: Iterable[str] | None = None,
        *,
        detailed: bool,
        max_workers: int = 4,
    ) -> list[tuple[str, dict]]:
        """``(data center id, root group tree)`` for every data center of the alias, or the named ones.

        Data-center list → ``get_datacenter(groupLinks=true)`` per DC → one recursive
        ``get_group`` per root, with at most ``max_workers`` requests in flight. Without
        ``detailed`` the trees carry servers only as ``server`` links: enough to know what exists.
        """
        self._bearer()  # log in once, before the threads start
        wanted = {d.lower() for d in data_centers} if data_centers else None
        dcs = [d["id"] for d in self.list_datacenters(alias) if wanted is None or d["id"].lower() in wanted]

        def root(dc: str) -> tuple[str, dict]:
            dc_body = self.get_datacenter(alias, dc, group_links=True)
            group = shapes.root_group_id(dc_body, f"GET /v2/datacenters/{alias}/{dc}")
            return dc, self.get_group(alias, group, detailed=detailed)

        with _pool(max_workers) as pool:
            return list(pool.map(root, dcs))

    def inventory(
        self,
        alias: str | None = None,
        data_centers: Iterable[str] | None = None,
        group_ids: Iterable[str] | None = None,
        max_workers: int = 4,
    ) -> list[dict]:
        """Every server in scope with its details, in as few requests as the API allows.

        One detailed, recursive group read per data center (see ``group_trees``), or per
        selected group. Each server dict gains ``data_center``, ``group_id``, ``group_name``
        and the lineage lists ``group_path_ids``/``group_path_names`` (root first, one entry
        per level, so a ``/`` inside a group name stays part of that name); duplicates (by id)
        are dropped. With ``group_ids``, the lineage starts at the selected group.
        """
        alias = alias or self.account_alias
        if group_ids:
            self._bearer()
            with _pool(max_workers) as pool:
                trees = list(pool.map(lambda g: (None, self.get_group(alias, g, detailed=True)), group_ids))
        else:
            trees = self.group_trees(alias, data_centers, detailed=True, max_workers=max_workers)
        servers: dict[str, dict] = {}
        for dc, tree in trees:
            for row in _flatten(tree, dc or str(tree.get("locationId") or "").lower()):
                servers.setdefault(row["id"].lower(), row)
        return list(servers.values())


def _pool(max_workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="clc-inventory")


def _flatten(tree: dict, data_center: str) -> Iterable[dict]:
    """The tree's servers, each with its data center and its group lineage."""
    for group in walk_groups(tree):
        for server in group.servers:
            yield {
                **server,
                "data_center": data_center,
                "group_id": group.id,
                "group_name": group.name,
                "group_path_ids": list(group.path_ids),
                "group_path_names": list(group.path_names),
            }
