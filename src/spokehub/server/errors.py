"""One error shape for every failure: ``{"error": {"code", "message", "path"}}``.

Bad requests get a 4xx that says what to do; spokehub errors keep their stable ``code`` and get
the status it maps to; anything unexpected is logged here and answered with a JSON 500 that
carries no traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spokehub.errors import SpokehubError
from spokehub.ops.hooks import HookRejected

__all__ = [
    "ERROR_RESPONSES",
    "ApiError",
    "CatchAllMiddleware",
    "ErrorBody",
    "ErrorDetail",
    "error_response",
    "install_error_handlers",
    "status_for",
]

log = logging.getLogger("spokehub.server")

# SpokehubError.code -> HTTP status; codes not listed are server-side failures (500).
_STATUS_BY_CODE = {
    "configuration": 400,
    "registration": 400,
    "serialization": 400,
    "invalid_input": 400,
    "too_large": 413,
    "workflow_not_found": 404,
    "run_not_found": 404,
    "token_not_found": 404,
    "schedule_not_found": 404,
    "schedule": 422,
    "contract": 422,
    "webhook_subscription": 422,
    "throttled": 429,
    "webhook_subscription_not_found": 404,
    "run_id_conflict": 409,
    "invalid_state": 409,
    "approval_closed": 409,
    "duplicate_vote": 409,
    "approval_forbidden": 403,
    "approval_link_invalid": 403,
    "approval_link_gone": 410,
    "store": 503,
    "schema": 503,
    "lease_lost": 503,
    "policy_denied": 403,
    "policy_invalid": 400,
}

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    path: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


# For the OpenAPI spec: every route may answer these with an ErrorBody.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Bad request"),
        (401, "Missing or invalid API token"),
        (403, "The token's role does not allow this"),
        (404, "Not found"),
        (409, "Conflict with the run's state or id"),
        (413, "The request body or input is larger than the limit"),
        (422, "Malformed request"),
    )
}


class ApiError(Exception):
    """Raised by handlers and dependencies for an error answer with a code of our choosing."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def status_for(exc: SpokehubError) -> int:
    return _STATUS_BY_CODE.get(exc.code, 500)


def error_response(
    status: int, code: str, message: str, path: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "path": path}}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    more = len(exc.errors()) - 5
    suffix = f" (and {more} more)" if more > 0 else ""
    return "; ".join(parts) + suffix + "; see /api/v1/openapi.json for the expected shape"


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", _validation_message(exc), request.url.path)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_BY_STATUS.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.url.path}; the API is under /api/v1 (spec: /api/v1/docs)"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, code, message, request.url.path, exc.headers)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, request.url.path, exc.headers)


async def _on_hook_rejected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HookRejected)
    return error_response(exc.status, exc.reason, str(exc), request.url.path)


async def _on_spokehub(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SpokehubError)
    status = status_for(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    return error_response(status, exc.code, str(exc), request.url.path)


async def _on_value_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(400, "bad_request", str(exc), request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(HookRejected, _on_hook_rejected)
    app.add_exception_handler(SpokehubError, _on_spokehub)
    app.add_exception_handler(ValueError, _on_value_error)
    app.add_middleware(CatchAllMiddleware)


class CatchAllMiddleware:
    """The last resort: log an unexpected exception, answer a JSON 500 without a traceback.

    A middleware rather than an ``Exception`` handler, because Starlette re-raises after such a
    handler, and the server would print the traceback a second time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:  # too late for an error body; the client sees a cut-off response
                raise
            response = error_response(
                500,
                "internal",
                "the server failed on this request; it is logged, please report it",
                scope.get("path", ""),
            )
            await response(scope, receive, send)
