"""Exceptions of the CLC integration (defined framework-free in ``include.patching.clc_errors``),
and how a task turns them into Airflow's retry decision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from include.patching.clc_errors import (
    ClcAccessDeniedError,
    ClcApiError,
    ClcAuthError,
    ClcConnectionError,
    ClcError,
    ClcLoginRefusedError,
    ClcResponseError,
    ClcServiceUnavailableError,
    PossiblySubmittedError,
    is_permanent,
)

__all__ = [
    "ClcAccessDeniedError",
    "ClcApiError",
    "ClcAuthError",
    "ClcConnectionError",
    "ClcError",
    "ClcLoginRefusedError",
    "ClcResponseError",
    "ClcServiceUnavailableError",
    "PossiblySubmittedError",
    "clc_failures_explained",
    "is_permanent",
]


@contextmanager
def clc_failures_explained(conn_id: str) -> Iterator[None]:
    """Turn CLC errors into sentences a person can act on; permanent ones fail without retries.

    A refused login or a forbidden alias cannot heal by retrying, and each repeated login
    brings the account closer to a lockout, so those fail the task at once
    (``AirflowFailException``). An unavailable service stays a retryable failure.
    """
    try:
        yield
    except ClcLoginRefusedError as exc:
        raise AirflowFailException(
            f"CLC refused the login of connection {conn_id!r}: {exc}. Check the connection's login "
            "and password. Not retried: every refused login brings the account closer to a lockout."
        ) from None
    except ClcAccessDeniedError as exc:
        raise AirflowFailException(
            f"CLC denied access: {exc}. The connection's user may not work on this account alias "
            "(or lacks the role for this call). Not retried."
        ) from None
    except ClcAuthError as exc:
        raise AirflowFailException(f"CLC refused the connection's credentials: {exc}. Not retried.") from None
    except (ClcServiceUnavailableError, ClcConnectionError) as exc:
        raise AirflowException(f"CLC service unavailable: {exc}. The task will be retried.") from None
