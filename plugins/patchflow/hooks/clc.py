"""Synchronous CLC v2 hook for worker-side calls, built on the HTTP provider's ``HttpHook``.

Why not plain ``HttpHook.run``: the CLC API wants a bearer token from its own login call
(not basic auth), the connection extra carries keys that must never become headers, and
"execute package" must not be replayed when its answer is lost (invariant I1). This hook
keeps HttpHook's session configuration (proxies, TLS, keep-alive, timeout from the
connection) and is only the transport: endpoints, retry decisions, token handling, parsing and
error texts come from the framework-free core in ``include.clc`` (shared with the triggerer's
async client). Secrets are registered with Airflow's masker and never put into log lines or
exception text (I6).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests import Request, Session
from urllib3.exceptions import ConnectTimeoutError

from include.clc import endpoints, shapes
from include.clc.client import ApiClock, ClientCore, Exchange
from include.clc.endpoints import ApiCall
from include.clc.errors import ClcApiError, ClcConnectionError, ClcResponseError
from include.clc.retry import Answer, Delivery, NoAnswer, Outcome, RetryPolicy
from include.clc.settings import OWN_EXTRA_KEYS, ClcSettings
from include.clc.shapes import BatchItem, QueueStatus
from include.clc.tokens import TokenTimer
from include.patching.scope import walk_groups
from include.patching.tuning import Tuning
from patchflow.hooks.deployment import DEFAULT_CONN_ID, ClcConnectionAttributes, client_core, token_timer
from patchflow.secrets import mask

T = TypeVar("T")


def _delivery(exc: requests.RequestException) -> Delivery:
    """Whether the request can have reached the server (refused/connect timeout: it did not)."""
    if isinstance(exc, requests.ConnectTimeout):
        return Delivery.NEVER_SENT
    # urllib3's NewConnectionError (connection refused) is a ConnectTimeoutError too
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    refused = isinstance(exc, requests.ConnectionError) and isinstance(reason, ConnectTimeoutError)
    return Delivery.NEVER_SENT if refused else Delivery.MAYBE_SENT


class ClcHook(ClcConnectionAttributes, HttpHook):
    """CenturyLink Cloud v2 + Patching-as-a-Service client.

    :param clc_conn_id: HTTP connection with ``host`` = API root (``https://api.ctl.io/v2``),
        login/password, and extra ``account_alias``, ``patching_base_url``, ``timeout``,
        ``retry_attempts``, ``retry_base``, ``retry_cap``.
    :param retry: override the retry policy (tests inject ``sleep``/``rand``).
    :param clock: monotonic clock measuring the token's age (never compared with the API's).
    """

    hook_name = "CenturyLink Cloud v2"

    def __init__(
        self,
        clc_conn_id: str = DEFAULT_CONN_ID,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(method="GET", http_conn_id=clc_conn_id)
        self.clc_conn_id = clc_conn_id
        self._retry_override = retry
        self._clock = clock
        self._auth_lock = threading.Lock()
        self._http: Session | None = None
        self._masked: str | None = None

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
    def _token_timer(self) -> TokenTimer:
        return token_timer(self.timing, self._clock)

    @cached_property
    def _core(self) -> ClientCore:
        timer = self._token_timer
        return client_core(self.settings, self.log, self.timing, retry=self._retry_override, timer=timer)

    @property
    def retry(self) -> RetryPolicy:
        return self._core.retry

    @property
    def _token(self) -> str | None:
        return self._core.tokens.token

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
        login = self._request(self._core.login_call())
        mask(login.token)
        self._core.logged_in(login)

    def authenticate(self) -> None:
        """Log in now unless a valid token is held, so a refused login fails a task before it
        changes anything (and the rollout never records it as a per-server failure)."""
        self._bearer()

    def _bearer(self) -> str:
        with self._auth_lock:
            if self._core.tokens.needs_login():
                self.login()
            assert self._token is not None
            if self._token != self._masked:  # a token from the cache is masked like a fresh one (I6)
                mask(self._token)
                self._masked = self._token
            return self._token

    @property
    def account_alias(self) -> str:
        """The connection's ``account_alias``, else the alias returned by login."""
        if self._core.alias_unknown():
            self._bearer()
        return self._core.account_alias()

    # --- transport -----------------------------------------------------------------------

    def _request(self, call: ApiCall[T]) -> T:
        """Send one call, with the core's retries; its parsed answer."""
        return self._request_dated(call)[0]

    def _request_dated(self, call: ApiCall[T]) -> tuple[T, datetime | None]:
        """The parsed answer and the API's clock when it answered (``Exchange.answered_at``)."""
        exchange = self._core.exchange(call)
        while exchange.open:
            pause = exchange.observe(self._send(exchange))
            if pause is not None:
                self.retry.sleep(pause)
        return exchange.result(), exchange.answered_at

    def _send(self, exchange: Exchange[Any]) -> Outcome:
        call, session = exchange.call, self._session()
        headers = {"Accept": "application/json"}
        if call.kind.authenticated:
            headers |= self._core.authorization(self._bearer())
        request = Request(call.method, exchange.url, params=call.params, json=call.body, headers=headers)
        try:
            resp = session.send(
                session.prepare_request(request), timeout=self.settings.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            return NoAnswer(_delivery(exc), type(exc).__name__)
        answered = resp.headers
        return Answer(resp.status_code, resp.content, answered.get("Retry-After"), answered.get("Date"))

    # --- API -----------------------------------------------------------------------------

    def list_datacenters(self, alias: str) -> list[dict]:
        return self._request(endpoints.datacenters(alias))

    def get_datacenter(self, alias: str, dc: str, group_links: bool = True) -> dict:
        return self._request(endpoints.datacenter(alias, dc, group_links=group_links))

    def get_group(self, alias: str, group_id: str, detailed: bool = True) -> dict:
        return self._request(endpoints.group(alias, group_id, detailed=detailed))

    def get_server(self, alias: str, server_id: str) -> dict:
        return self._request(endpoints.server(alias, server_id))

    def start_maintenance(self, alias: str, ids: Iterable[str]) -> list[BatchItem]:
        """Idempotent on the platform (already-in-maintenance → ``isQueued: false``), so retried."""
        return self._request(endpoints.start_maintenance(alias, ids))

    def stop_maintenance(self, alias: str, ids: Iterable[str]) -> list[BatchItem]:
        return self._request(endpoints.stop_maintenance(alias, ids))

    def execute_package(
        self, alias: str, ids: Iterable[str], package_id: str, parameters: dict[str, str] | None = None
    ) -> list[BatchItem]:
        """Execute a package on servers. Never replayed once it may have been processed:
        raises ``PossiblySubmittedError`` instead (the caller reconciles, I1)."""
        return self._request(endpoints.execute_package(alias, ids, package_id, parameters))

    def create_snapshot(self, alias: str, ids: Iterable[str], expiration_days: int) -> list[BatchItem]:
        """Never replayed once it may have been processed (``PossiblySubmittedError``)."""
        return self._request(endpoints.create_snapshot(alias, ids, expiration_days))

    def restore_snapshot(self, alias: str, server_id: str, snapshot_id: str) -> str:
        """The restore's queue job id; never replayed once it may have been processed."""
        return self._request(endpoints.restore_snapshot(alias, server_id, snapshot_id))

    def delete_snapshot(self, alias: str, server_id: str, snapshot_id: str) -> str:
        """The delete's queue job id."""
        return self._request(endpoints.delete_snapshot(alias, server_id, snapshot_id))

    def get_queue_status(self, alias: str, job_id: str) -> QueueStatus:
        return self._request(endpoints.queue_status(alias, job_id))

    def get_patch_summary(self, alias: str, server_id: str) -> list[dict]:
        return self._request(endpoints.patch_summary(alias, server_id))

    def patching_clock(self) -> ApiClock | None:
        """The newest ``Date`` the patching service answered this hook with, and when."""
        return self._core.patching_clock

    def get_patch_summary_dated(self, alias: str, server_id: str) -> tuple[list[dict], datetime | None]:
        """The summary and the API's clock when it answered (its ``Date``; None without one)."""
        return self._request_dated(endpoints.patch_summary(alias, server_id))

    def get_patch_detail(self, alias: str, server_id: str, execution_id: str) -> dict:
        return self._request(endpoints.patch_detail(alias, server_id, execution_id))

    def get_patch_detail_dated(
        self, alias: str, server_id: str, execution_id: str
    ) -> tuple[dict, datetime | None]:
        """The detail and the API's clock when it answered (its ``Date``; None without one)."""
        return self._request_dated(endpoints.patch_detail(alias, server_id, execution_id))

    def wait_for_job(
        self,
        alias: str,
        job_id: str,
        *,
        timeout: float | None = None,
        interval: float | None = None,
        cap: float | None = None,
    ) -> QueueStatus:
        """Poll a queue job until terminal or ``timeout``; returns the last status seen.

        A 5xx, a lost connection or a damaged body (a proxy's page, a cut-off answer) while
        polling is a failed read, polled again — never taken for a status. Defaults: the
        deployment's ``maintenance_timeout``/``job_poll_interval``/``job_poll_cap``.
        """
        timeout = self.timing.maintenance_timeout if timeout is None else timeout
        interval = self.timing.job_poll_interval if interval is None else interval
        cap = self.timing.job_poll_cap if cap is None else cap
        deadline = time.monotonic() + timeout
        status = QueueStatus.NOT_STARTED
        while True:
            try:
                status = self.get_queue_status(alias, job_id)
            except (ClcApiError, ClcConnectionError, ClcResponseError) as exc:
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
            endpoint = self._core.endpoint(endpoints.datacenter(alias, dc, group_links=True))
            group = shapes.root_group_id(dc_body, endpoint)
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
        trees: Sequence[tuple[str | None, dict]]
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
