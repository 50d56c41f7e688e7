"""Errors of the OpenAI API: domain exceptions inside, the OpenAI envelope at the edge.

Every error a client sees is ``{"error": {"message", "type", "param", "code"}}`` with a
matching HTTP status; FastAPI's ``{"detail": ...}`` never leaves the server. Engine
errors (src/errors.py) carry stable codes, which map onto statuses here, so routers
just let them propagate.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from openai_server.protocol import ErrorBody, ErrorResponse
from src.errors import DomainError

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error with its OpenAI envelope fields and HTTP status."""

    status = 500
    type = "server_error"

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The envelope (:class:`ErrorResponse`) as JSON data: every error path sends this."""
        return ErrorResponse(error=ErrorBody(message=self.message, type=self.type,
                                             param=self.param, code=self.code)).model_dump()


class InvalidRequestError(APIError):
    status = 400
    type = "invalid_request_error"


class AuthenticationError(APIError):
    status = 401
    type = "authentication_error"


class NotFoundError(APIError):
    status = 404
    type = "invalid_request_error"


class PermissionDeniedAPIError(APIError):
    status = 403
    type = "permission_error"


class ConflictError(APIError):
    status = 409
    type = "invalid_request_error"


class RequestTooLargeError(APIError):
    status = 413
    type = "invalid_request_error"


class TooManyRequestsError(APIError):
    """Over --api_rate_limit (or the key's own limit); sent with Retry-After."""

    status = 429
    type = "rate_limit_error"


class ServiceUnavailableError(APIError):
    status = 503
    type = "server_error"


class GatewayTimeoutError(APIError):
    """The remote inference server did not answer in time."""

    status = 504
    type = "server_error"


#: The HTTP face of each stable domain error code (src/errors.py); every code has one.
STATUS_OF_CODE: dict[str, type[APIError]] = {
    "internal_error": APIError,
    "invalid_parameter": InvalidRequestError,
    "unsupported_feature": InvalidRequestError,
    "model_not_found": NotFoundError,
    "engine_error": APIError,
    "context_length_exceeded": InvalidRequestError,
    "queue_timeout": ServiceUnavailableError,
    "engine_unavailable": ServiceUnavailableError,
    "remote_unavailable": ServiceUnavailableError,
    "remote_timeout": GatewayTimeoutError,
    "remote_rejected": InvalidRequestError,
    "documents_error": InvalidRequestError,
    "collection_not_found": NotFoundError,
    "collection_exists": ConflictError,
    "invalid_collection_name": InvalidRequestError,
    "upload_not_allowed": PermissionDeniedAPIError,
    "documents_disabled": InvalidRequestError,
    "embedding_model_mismatch": ConflictError,
    "vector_store_unavailable": ServiceUnavailableError,
    "feature_disabled": NotFoundError,
    "audio_invalid": InvalidRequestError,
    "unsupported_format": InvalidRequestError,
    "upload_too_large": RequestTooLargeError,
    "voice_not_found": InvalidRequestError,
}

#: Codes whose messages are internal: the client sees a generic one (the log has the rest).
_HIDDEN = {"internal_error": "internal server error", "engine_error": "the engine failed to answer"}


def from_exception(exc: BaseException) -> APIError:
    """The APIError a client should see for ``exc`` (internals never leak into messages)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, DomainError):
        kind = STATUS_OF_CODE.get(exc.code, APIError)
        if exc.code in _HIDDEN or kind is APIError:
            log.error("engine error %s: %s", exc.code, exc.message)
            return APIError(_HIDDEN.get(exc.code, "internal server error"), code=exc.code)
        return kind(exc.message, param=exc.param, code=exc.code)
    log.exception("unexpected error", exc_info=exc)
    return APIError("internal server error")


def error_response(error: APIError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    if not loc and first.get("type") in ("model_attributes_type", "dict_type"):
        return "the request body must be a JSON object", None
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    param = ".".join(loc) or None
    return (f"{param}: {message}" if param else message), param


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception onto the OpenAI envelope."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(from_exception(exc))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, param = _validation_message(exc)
        return error_response(InvalidRequestError(message, param=param))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kind: type[APIError] = {
            404: NotFoundError, 401: AuthenticationError, 413: RequestTooLargeError,
            429: TooManyRequestsError, 503: ServiceUnavailableError,
        }.get(exc.status_code, InvalidRequestError)
        error = kind(str(exc.detail))
        error.status = exc.status_code
        return error_response(error)

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(DomainError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_api_error)
