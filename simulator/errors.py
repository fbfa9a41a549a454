"""Model-level errors that the HTTP layer renders with the reference's bodies (§1.5, §12)."""

from __future__ import annotations

NOT_FOUND_MESSAGE = "The requested resource does not exist."
UNAUTHORIZED_MESSAGE = "Authorization has been denied for this request."
INVALID_MESSAGE = "The request is invalid."
BAD_LOGIN_MESSAGE = "We didn't recognize the username or password you entered. Please try again."
CANNOT_QUEUE_MESSAGE = (
    "The operation cannot be queued because the server cannot be found or it is not in a valid state."
)


class ApiError(Exception):
    """An error answer: HTTP ``status`` and a JSON ``body`` (None = empty body)."""

    def __init__(self, status: int, body: dict | None):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def not_found(empty: bool = False) -> ApiError:
    return ApiError(404, None if empty else {"message": NOT_FOUND_MESSAGE})


def bad_request(message: str) -> ApiError:
    return ApiError(400, {"message": message})


def invalid(field: str, reason: str) -> ApiError:
    return ApiError(400, {"message": INVALID_MESSAGE, "modelState": {field: [reason]}})


def forbidden(message: str) -> ApiError:
    return ApiError(403, {"message": message})


def unauthorized() -> ApiError:
    return ApiError(401, {"message": UNAUTHORIZED_MESSAGE})
