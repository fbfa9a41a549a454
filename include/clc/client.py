"""The CLC client without its transport: shared by the worker hook and the triggerer's client.

A transport (``patchflow.hooks.clc`` on requests, ``patchflow.hooks.clc_async`` on aiohttp)
only sends bytes. Everything else is here, written once: which URL an ``ApiCall`` goes to,
the retry decision after each attempt and its log line, the 401 re-login, reading the answer
into a result or an error whose text is redacted, and the token and alias from the login.

A transport sends one call like this::

    exchange = core.exchange(call)
    while exchange.open:
        pause = exchange.observe(send(exchange))   # an Answer or a NoAnswer
        if pause is not None:
            sleep(pause)
    return exchange.result()
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from include.clc import endpoints
from include.clc.endpoints import Api, ApiCall
from include.clc.errors import (
    ClcConnectionError,
    ClcResponseError,
    PossiblySubmittedError,
    error_type_for,
)
from include.clc.retry import Action, Answer, Decision, Outcome, RetryPolicy, decide
from include.clc.settings import ClcSettings
from include.clc.shapes import API_MESSAGE_LIMIT, Login, api_message, read_body
from include.clc.tokens import TokenState
from include.redaction import redact
from include.timefmt import utcnow

T = TypeVar("T")


class ClientLog(Protocol):
    """The logger a transport lends the core (Airflow's ``self.log`` or a ``logging.Logger``)."""

    def info(self, message: str, /, *args: Any) -> object: ...

    def warning(self, message: str, /, *args: Any) -> object: ...


@dataclass(frozen=True)
class ApiClock:
    """The patching service's clock as one of its answers showed it (its ``Date`` header)."""

    api: datetime
    """The service's time when it answered."""
    seen: datetime
    """Our time when the answer arrived."""


@dataclass
class ClientCore:
    """One client's settings, retry policy, token and logger."""

    settings: ClcSettings
    retry: RetryPolicy
    tokens: TokenState
    log: ClientLog
    patching_clock: ApiClock | None = None
    """The newest ``Date`` the patching service answered this client with: an execution that
    starts after a request sent later is dated no earlier, on the same clock (``Rollout``)."""

    def answered(self, call: ApiCall[Any], status: int, date: datetime | None) -> None:
        """Keep the patching service's clock from a successful answer that carried one."""
        if call.api is Api.PATCHING and status < 400 and date is not None:
            latest = self.patching_clock
            if latest is None or date >= latest.api:
                self.patching_clock = ApiClock(date, utcnow())

    def exchange(self, call: ApiCall[T]) -> Exchange[T]:
        return Exchange(call, self)

    def login_call(self) -> ApiCall[Login]:
        return endpoints.login(self.settings.login, self.settings.password)

    def logged_in(self, login: Login) -> None:
        """Keep the token (the transport has registered it with the masker first)."""
        self.tokens.store(login)
        self.log.info("Logged in to CLC as %s (alias %s)", self.settings.login, login.alias)

    def authorization(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def alias_unknown(self) -> bool:
        """True while only a login can tell the account alias."""
        return not self.settings.account_alias and self.tokens.login_alias is None

    def account_alias(self) -> str:
        """The connection's ``account_alias``, else the alias returned by login."""
        alias = self.settings.account_alias or self.tokens.login_alias
        if not alias:
            raise ClcResponseError(self.endpoint(self.login_call()), "no accountAlias and none configured")
        return alias

    def secrets(self) -> list[str | None]:
        return [self.settings.password, self.tokens.token]

    def endpoint(self, call: ApiCall[Any]) -> str:
        """``METHOD /url/path``: how errors and log lines name a call (no query, no host)."""
        return f"{call.method} {urlsplit(self.settings.url(call.api, call.path)).path}"


class Exchange(Generic[T]):
    """One logical request: its attempts, the decision after each, and its result."""

    def __init__(self, call: ApiCall[T], core: ClientCore) -> None:
        self.call = call
        self.url = core.settings.url(call.api, call.path)
        self.path = urlsplit(self.url).path
        self.endpoint = f"{call.method} {self.path}"
        self._core = core
        self._attempt = 0
        self._relogged = False
        self._last: tuple[Outcome, Decision] | None = None
        self._parsed: tuple[T] | None = None

    @property
    def open(self) -> bool:
        """True until an attempt's outcome is final."""
        return self._last is None or self._last[1].action in (Action.RETRY, Action.RELOGIN)

    def observe(self, outcome: Outcome) -> float | None:
        """Judge one attempt's outcome; the seconds to wait before the next one, if any."""
        self._attempt += 1
        decision = decide(self.call.kind, outcome, self._attempt, self._core.retry, relogged=self._relogged)
        if decision.action is Action.ANSWER and isinstance(outcome, Answer):
            decision = self._judge_body(outcome, decision)
        self._last = (outcome, decision)
        if decision.action is Action.ANSWER and isinstance(outcome, Answer):
            self._core.answered(self.call, outcome.status, self.answered_at)
        if decision.action is Action.RELOGIN:
            self._relogin()
        elif decision.action is Action.RETRY:
            self._log_retry(decision)
            return decision.delay
        return None

    def result(self) -> T:
        """The parsed answer, or the error that ends this request."""
        if self._last is None or self.open:
            raise RuntimeError("the request is not finished")
        outcome, decision = self._last
        if decision.action is Action.GIVE_UP:
            reason = f"{decision.reason} after {self._attempt} attempts"
            raise ClcConnectionError(self.call.method, self.path, reason) from None
        if decision.action is Action.POSSIBLY_SUBMITTED:
            raise PossiblySubmittedError(self.call.method, self.path, decision.reason) from None
        assert isinstance(outcome, Answer)
        if self._parsed is not None:
            return self._parsed[0]
        return self._read(outcome)

    @property
    def answered_at(self) -> datetime | None:
        """The API's clock at the final answer (its ``Date`` header), None without one.

        The patching service dates executions on that clock, so "how long has this run" is
        an API time minus an API time, never compared with ours (I8)."""
        if self._last is None or not isinstance(self._last[0], Answer) or not self._last[0].date:
            return None
        try:
            when = parsedate_to_datetime(self._last[0].date)
        except (TypeError, ValueError, IndexError):
            return None
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)

    def _judge_body(self, answer: Answer, decision: Decision) -> Decision:
        """A successful status with a damaged body (cut off, a proxy's page, the wrong shape) is a
        failed read: an idempotent call reads again; for a call that must not run twice the
        request may have been processed, so ``result()`` raises ``PossiblySubmittedError``."""
        if answer.status >= 400:
            return decision
        try:
            self._parsed = (self._read(answer),)  # kept: result() does not parse twice
        except ClcResponseError as exc:
            if not self.call.kind.idempotent:
                return Decision(Action.POSSIBLY_SUBMITTED, reason=f"damaged answer: {exc}")
            if self._attempt < self._core.retry.attempts:
                return Decision(Action.RETRY, self._core.retry.delay(self._attempt), f"damaged answer: {exc}")
        return decision

    def _relogin(self) -> None:
        self._relogged = True
        self._attempt -= 1  # the refused token's attempt does not count
        self._core.tokens.forget()
        self._core.log.info("%s: token refused (401), logging in again", self.endpoint)

    def _log_retry(self, decision: Decision) -> None:
        self._core.log.warning(
            "%s: %s; retry %d/%d in %.1fs",
            self.endpoint,
            decision.reason,
            self._attempt,
            self._core.retry.attempts - 1,
            decision.delay,
        )

    def _read(self, answer: Answer) -> T:
        body = read_body(answer.body, answer.status, self.endpoint)
        if answer.status < 400 or self._refused_per_server(answer.status, body):
            return self.call.parse(body, self.endpoint)
        error_type = error_type_for(answer.status, login=not self.call.kind.authenticated)
        message = redact(api_message(body), self._core.secrets())[:API_MESSAGE_LIMIT]
        raise error_type(self.call.method, self.path, answer.status, message)

    def _refused_per_server(self, status: int, body: Any) -> bool:
        """A batch the API refused as a whole answers 400 with the per-server array."""
        return self.call.kind.answers_per_server and status == 400 and isinstance(body, list)
