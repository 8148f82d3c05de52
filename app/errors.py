"""One error shape for the whole API: ``{"error": {"code": "...", "message": "..."}}``.

Handlers raise :class:`ApiError`; :func:`install_error_handlers` turns it, FastAPI's
validation errors, unknown routes and any unexpected exception into that shape. A 500
says only that something went wrong: tracebacks go to the server log, never to clients.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response

from .serialize import OrjsonResponse

__all__ = ["ApiError", "error_body", "error_response", "install_error_handlers", "ERROR_RESPONSES"]

log = logging.getLogger("convscope.errors")

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_parameter",
    500: "internal_error",
    503: "server_busy",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable machine-readable code and a message that
    tells the user what to do."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return OrjsonResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "body", "header", "cookie"):
        where = {"query": "query parameter", "path": "path parameter"}.get(parts[0], parts[0])
        return f"{where} {'.'.join(parts[1:])!r}" if len(parts) > 1 else where
    return ".".join(parts)


async def _api_error(request: Request, exc: ApiError) -> Response:
    if not request.url.path.startswith("/api/"):  # a page: the message as text, for people
        message = exc.message[:1].upper() + exc.message[1:] + "."
        return PlainTextResponse(message, status_code=exc.status, headers=exc.headers)
    return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    details = [
        {"location": _location(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    message = "; ".join(f"{d['location']}: {d['message']}" for d in details) or "invalid request"
    return error_response(422, "invalid_parameter", message, details=details)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    headers = dict(exc.headers or {})
    if not request.url.path.startswith("/api/"):
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=headers)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"no API endpoint at {request.url.path}; see /docs for the list of endpoints"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; see /docs"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Logged with its traceback for the operator; the client learns nothing internal.
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal_error", "the server failed to handle this request; please try again"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


def _error_schema(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                }
            }
        },
    }


# For the OpenAPI schema: the error responses every endpoint may give.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: _error_schema("Unknown model, layer or run (an expired run says to post the image again)"),
    422: _error_schema("Invalid parameter, cell out of range, or an image that cannot be decoded"),
}
