"""One error base class for the backend and the handlers that map it to JSON {"detail": ...}.

Raise a `BackendError` subclass anywhere (service, repository, dependency); the handler turns
it into the right status. Routes under /auth/v1 also get the GoTrue fields (`msg`, `code`,
`error_code`) that the supabase client parses.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

AUTH_PREFIX = "/auth/v1"
SUPABASE_API_VERSION = "2024-01-01"


class BackendError(Exception):
    """Base class: a user-facing message and an HTTP status."""

    status_code = 400
    default_code = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        keep_changes: bool = False,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.headers = headers or {}
        # Extra JSON fields (e.g. GoTrue's `weak_password`), added to the body.
        self.extra = extra or {}
        # True: the request transaction commits although the request fails (a failed sign-in
        # must still count toward the rate limit; a reused refresh token must stay revoked).
        self.keep_changes = keep_changes


class BadRequestError(BackendError):
    status_code = 400
    default_code = "bad_request"


class UnauthorizedError(BackendError):
    status_code = 401
    default_code = "unauthorized"

    def __init__(
        self,
        detail: str = "Not signed in or the session expired; sign in again.",
        *,
        code: str | None = None,
    ) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(BackendError):
    status_code = 403
    default_code = "forbidden"


class NotFoundError(BackendError):
    status_code = 404
    default_code = "not_found"


class ConflictError(BackendError):
    status_code = 409
    default_code = "conflict"


class PayloadTooLargeError(BackendError):
    status_code = 413
    default_code = "payload_too_large"


class UnsupportedMediaTypeError(BackendError):
    status_code = 415
    default_code = "unsupported_media_type"


class ValidationFailedError(BackendError):
    status_code = 422
    default_code = "validation_failed"


class TooManyRequestsError(BackendError):
    status_code = 429
    default_code = "over_request_rate_limit"

    def __init__(
        self, detail: str, *, retry_after: int, code: str | None = None, keep_changes: bool = False
    ) -> None:
        super().__init__(
            detail,
            code=code,
            headers={"Retry-After": str(max(1, retry_after))},
            keep_changes=keep_changes,
        )


class ServiceUnavailableError(BackendError):
    """A dependency of the server (database, key server, storage) is down; retry later."""

    status_code = 503
    default_code = "service_unavailable"


def error_response(
    request: Request,
    status_code: int,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail, **(extra or {})}
    out_headers = dict(headers or {})
    if request.url.path.startswith(AUTH_PREFIX):
        # supabase_auth reads `msg` for the message and `code` (API version >= 2024-01-01).
        body.update({"msg": detail, "code": code, "error_code": code})
        out_headers["X-Supabase-Api-Version"] = SUPABASE_API_VERSION
    return JSONResponse(body, status_code=status_code, headers=out_headers)


def _format_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        msg = str(err.get("msg", "invalid"))
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "Invalid request: " + "; ".join(parts) if parts else "Invalid request."


def add_exception_handlers(app: FastAPI) -> None:
    """Every error leaves as JSON {"detail": "<message>"}; bad input is never a 500."""

    async def backend_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BackendError)
        return error_response(
            request, exc.status_code, exc.detail, exc.code, exc.headers, exc.extra
        )

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, 422, _format_validation(exc), "validation_failed")

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(
            request, exc.status_code, detail, code, dict(exc.headers or {}) or None
        )

    async def unexpected_error(request: Request, _exc: Exception) -> JSONResponse:
        logger.exception("Unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "Internal server error.", "unexpected_failure")

    app.add_exception_handler(BackendError, backend_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
