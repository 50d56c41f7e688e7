"""Errors of the OpenAI API: domain exceptions inside, the OpenAI envelope at the edge.

Every error a client sees is ``{"error": {"message", "type", "param", "code"}}`` with a
matching HTTP status; FastAPI's ``{"detail": ...}`` never leaves the server. Engine
errors (src.engine.types) map onto statuses here, so routers just let them propagate.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from src.docqa.collections import (
    CollectionExistsError,
    DocumentsDisabledError,
    InvalidCollectionNameError,
    PermissionDeniedError,
    UnknownCollectionError,
)
from src.engine.types import (
    ContextLengthError,
    EngineError,
    EngineUnavailableError,
    QueueTimeoutError,
)
from src.ipc.client import InvalidParamsError, RemoteError

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
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}


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


class ServiceUnavailableError(APIError):
    status = 503
    type = "server_error"


#: Document Q&A errors (src.docqa), raised in the engine and named over IPC: (error, code).
DOCQA_ERRORS: dict[str, tuple[type[APIError], str]] = {
    UnknownCollectionError.__name__: (NotFoundError, "collection_not_found"),
    CollectionExistsError.__name__: (ConflictError, "collection_exists"),
    InvalidCollectionNameError.__name__: (InvalidRequestError, "invalid_collection_name"),
    PermissionDeniedError.__name__: (PermissionDeniedAPIError, "upload_not_allowed"),
    DocumentsDisabledError.__name__: (InvalidRequestError, "documents_disabled"),
    "EmbeddingModelMismatch": (ConflictError, "embedding_model_mismatch"),  # src.docqa.store (chromadb)
}


def from_exception(exc: BaseException) -> APIError:
    """The APIError a client should see for ``exc`` (internals never leak into messages)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, QueueTimeoutError):
        return ServiceUnavailableError(str(exc), code="queue_timeout")
    if isinstance(exc, EngineUnavailableError):
        return ServiceUnavailableError(str(exc) or "the engine is unavailable", code="engine_unavailable")
    if isinstance(exc, ContextLengthError):
        return InvalidRequestError(str(exc), param="messages", code="context_length_exceeded")
    if isinstance(exc, RemoteError) and exc.type in DOCQA_ERRORS:
        kind, code = DOCQA_ERRORS[exc.type]
        return kind(str(exc), code=code)
    if isinstance(exc, InvalidParamsError):
        return InvalidRequestError(str(exc))
    if isinstance(exc, EngineError):
        log.error("engine error: %s", exc)
        return APIError("the engine failed to answer", code="engine_error")
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
            503: ServiceUnavailableError,
        }.get(exc.status_code, InvalidRequestError)
        error = kind(str(exc.detail))
        error.status = exc.status_code
        return error_response(error)

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(EngineError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_api_error)
