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


class NotImplementedAPIError(APIError):
    """A feature this server has, configured off (the seed gateway's "not here" answer)."""

    status = 501
    type = "not_implemented_error"


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
    "unsupported_parameter": InvalidRequestError,
    "model_not_found": NotFoundError,
    "engine_error": APIError,
    "context_length_exceeded": InvalidRequestError,
    "queue_timeout": ServiceUnavailableError,
    "engine_unavailable": ServiceUnavailableError,
    "remote_unavailable": ServiceUnavailableError,
    "model_not_loaded": ServiceUnavailableError,
    "model_load_failed": InvalidRequestError,
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
    "feature_disabled": NotImplementedAPIError,
    "feature_off_enable_stt": NotImplementedAPIError,
    "feature_off_enable_tts": NotImplementedAPIError,
    "feature_off_visible_image_models": NotImplementedAPIError,
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


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "bytes", "list", "dict", "none", "tuple", "set"})


def _is_schema_tag(part: object) -> bool:
    """A location part pydantic adds for a union member or a validator, not a field the
    client wrote: ``function-after[_log_unknown(), TokenizeCompletionRequest]``, a model's
    class name, ``str``, ``list[int]``, ``tagged-union[...]``."""
    if not isinstance(part, str):
        return False
    return "[" in part or "(" in part or part[:1].isupper() or part in _TYPE_TAGS


def client_location(loc: tuple[object, ...] | list[object], body: object = None) -> list[str]:
    """An error location as the client wrote it: 'body' and pydantic's union and validator
    tags dropped (a part is kept when the client's body has it, even if it looks like a tag)."""
    parts: list[str] = []
    current = body
    for part in loc:
        if part == "body" and not parts:
            continue
        present = (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current))
        if not present and _is_schema_tag(part):
            continue
        parts.append(str(part))
        current = current[part] if present else None  # type: ignore[index]
    return parts


def _depth(loc: tuple[object, ...] | list[object], body: object) -> int:
    """How far ``loc`` goes into what the client sent."""
    depth, current = 0, body
    for part in loc:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        elif not _is_schema_tag(part) and part != "body":
            break
        else:
            continue
        depth += 1
    return depth


def _branch(loc: tuple[object, ...] | list[object]) -> tuple[object, ...]:
    """The union member an error is about: its location up to the last schema tag."""
    tags = [i for i, part in enumerate(loc) if _is_schema_tag(part)]
    return tuple(loc[: tags[-1] + 1]) if tags else ()


def _best_error(errors: list[dict[str, Any]], body: object) -> dict[str, Any]:
    """Of the errors of a union's members, one of the member the client meant (not one
    whose literal tag, e.g. a content part's ``type``, the client's value does not match),
    the deepest in what the client sent (its /tokenize ``messages``, not the other
    member's missing ``prompt``)."""
    mismatched = {_branch(e.get("loc", ())) for e in errors if e.get("type") == "literal_error"}

    def rank(error: dict[str, Any]) -> tuple[bool, int]:
        loc = error.get("loc", ())
        return _branch(loc) not in mismatched, _depth(loc, body)

    return max(errors, key=rank)  # the first of equals


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = list(exc.errors())
    body = getattr(exc, "body", None)
    first = _best_error(errors, body) if errors else {}
    loc = client_location(first.get("loc", ()), body)
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
