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
    """Login was refused, or a fresh token was refused too (HTTP 400/401/403 on auth)."""


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
