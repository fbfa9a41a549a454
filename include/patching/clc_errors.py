"""Errors raised when talking to the CLC API (framework-free, safe to log).

Every message carries the HTTP method, the URL path, the status and the API's own
``message`` — never request headers or bodies, so a bearer token or a password cannot
leak through an exception (invariant I6). ``patchflow.exceptions`` re-exports these.
"""

from __future__ import annotations


class ClcError(Exception):
    """Base class of every error from the CLC integration."""


class ClcApiError(ClcError):
    """The API answered with an error status (after any retries)."""

    def __init__(self, method: str, path: str, status: int | None, message: str = "") -> None:
        self.method, self.path, self.status, self.api_message = method, path, status, message
        detail = f": {message}" if message else ""
        super().__init__(f"{method} {path} failed with HTTP {status}{detail}")


class ClcAuthError(ClcApiError):
    """The API refused our credentials or our access: permanent, retrying cannot help.

    Repeating a refused login only brings the account closer to a lockout, so callers fail
    the run at once instead of retrying (see ``is_permanent``).
    """


class ClcLoginRefusedError(ClcAuthError):
    """The login call refused the connection's user name or password (HTTP 400/401/403)."""


class ClcAccessDeniedError(ClcAuthError):
    """HTTP 403: the alias is outside the user's reach, or the user's role lacks the action."""


class ClcServiceUnavailableError(ClcApiError):
    """The service answered 429/5xx on every attempt: a transient outage, worth a later retry.

    Never a ``ClcAuthError``: a 503 from the login call says nothing about the password.
    """

    def __str__(self) -> str:
        return f"{super().__str__()} (service unavailable)"


class ClcConnectionError(ClcError):
    """No usable answer: connection errors or timeouts on every attempt."""

    def __init__(self, method: str, path: str, reason: str) -> None:
        self.method, self.path, self.reason = method, path, reason
        super().__init__(f"{method} {path} got no answer: {reason}")


class ClcResponseError(ClcError):
    """The API answered 2xx but the body is not the documented shape."""

    def __init__(self, endpoint: str, problem: str) -> None:
        self.endpoint, self.problem = endpoint, problem
        super().__init__(f"malformed response from {endpoint}: {problem}")


class PossiblySubmittedError(ClcError):
    """A non-idempotent request may have reached the server, and its answer was lost.

    Raised instead of retrying ``executePackage`` (invariant I1): the request is never sent
    again; the caller learns what happened from the patch summary.
    """

    def __init__(self, method: str, path: str, reason: str) -> None:
        self.method, self.path, self.reason = method, path, reason
        super().__init__(
            f"{method} {path} may have been processed but the answer was lost ({reason}); not sent again"
        )


#: HTTP statuses after which the service itself is unavailable (after the client's retries).
UNAVAILABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def error_type_for(status: int, *, login: bool) -> type[ClcApiError]:
    """The exception class for an error answer, so sync and async clients classify alike.

    On the login call a 400/401/403 is a refused user name or password (permanent) and a
    429/5xx an unavailable service (transient) — never the other way round. Elsewhere a 401
    that survived a fresh login and any 403 are permanent auth errors; the rest stay
    ``ClcApiError`` for the caller to judge.
    """
    if login:
        if status in UNAVAILABLE_STATUSES:
            return ClcServiceUnavailableError
        return ClcLoginRefusedError if status in (400, 401, 403) else ClcApiError
    if status == 403:
        return ClcAccessDeniedError
    if status == 401:
        return ClcAuthError
    return ClcApiError


def is_permanent(exc: BaseException) -> bool:
    """True when retrying the task cannot help (refused login, forbidden alias)."""
    return isinstance(exc, ClcAuthError)
