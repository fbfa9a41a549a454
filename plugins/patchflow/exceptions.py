"""Exceptions of the CLC integration (defined framework-free in ``include.patching.clc_errors``)."""

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
    "is_permanent",
]
