"""Domain errors with an HTTP status and a machine-readable reason; mapped centrally in :mod:`keyserver.app`."""

from __future__ import annotations


class ApiError(Exception):
    """An error a client caused or must know about: ``status``, a short ``reason`` word and a message."""

    status = 400
    reason = "bad_request"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason


class BadRequest(ApiError):
    status, reason = 400, "bad_request"


class Unauthorized(ApiError):
    status, reason = 401, "unauthorized"


class Forbidden(ApiError):
    status, reason = 403, "forbidden"


class NotFound(ApiError):
    status, reason = 404, "not_found"


class Conflict(ApiError):
    status, reason = 409, "conflict"


class Invalid(ApiError):
    status, reason = 422, "invalid"


class TooManyRequests(ApiError):
    status, reason = 429, "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


# The error statuses every API route may answer, documented in the OpenAPI description
# (``include_router(..., responses=ERROR_RESPONSES)``) so that a client, or a fuzzer checking
# conformance, knows every status the server gives: all are the JSON body of ``_json``.
_ERROR_BODY = {"type": "object", "required": ["error", "detail"],
               "properties": {"error": {"type": "string", "description": "a short reason word"},
                              "detail": {"type": "string", "description": "what was wrong, for a person"}}}
ERROR_RESPONSES: dict = {
    status: {"description": text, "content": {"application/json": {"schema": _ERROR_BODY}}}
    for status, text in ((400, "bad request"), (401, "no, unknown, expired or revoked token"),
                         (403, "this role or kind of token may not do this"), (404, "no such object"),
                         (409, "conflicts with the current state"), (422, "invalid request"),
                         (429, "too many attempts; see Retry-After"))
}
