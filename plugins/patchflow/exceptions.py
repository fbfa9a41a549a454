"""Exceptions of the CLC integration (defined framework-free in ``include.patching.clc_errors``)."""

from include.patching.clc_errors import (
    ClcApiError,
    ClcAuthError,
    ClcConnectionError,
    ClcError,
    ClcResponseError,
    PossiblySubmittedError,
)

__all__ = [
    "ClcApiError",
    "ClcAuthError",
    "ClcConnectionError",
    "ClcError",
    "ClcResponseError",
    "PossiblySubmittedError",
]
