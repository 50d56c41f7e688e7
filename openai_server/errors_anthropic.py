"""Anthropic's error envelope for the /v1/messages paths.

Every error under /v1/messages is ``{"type": "error", "error": {"type", "message"}}``
with Anthropic's error types, whichever layer refused the request (the API key check,
rate limits, the body size limit, validation, the route): :class:`AnthropicErrorMiddleware`
rewrites the OpenAI envelope of those paths on the way out, so each layer keeps raising
its own APIError. Errors after a stream has started go out as an ``error`` event
(openai_server.serving_anthropic).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openai_server.errors import APIError

PATH_PREFIX = "/v1/messages"

#: Anthropic's error type for each status (anything else 4xx: invalid_request_error).
TYPE_OF_STATUS = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 502: "api_error", 503: "overloaded_error", 504: "api_error", 529: "overloaded_error",
}


def anthropic_type(status: int) -> str:
    return TYPE_OF_STATUS.get(status, "invalid_request_error" if status < 500 else "api_error")


def anthropic_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": anthropic_type(status), "message": message}}


def anthropic_error(error: APIError) -> dict[str, Any]:
    return anthropic_body(error.status, error.message)


def _rewrite(status: int, body: bytes) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict) and data.get("type") != "error":
        message = str(data["error"].get("message") or "error")
    elif isinstance(data, dict) and data.get("type") == "error":
        return body
    else:
        message = body.decode("utf-8", "replace")[:500] or "error"
    return json.dumps(anthropic_body(status, message)).encode()


class AnthropicErrorMiddleware:
    """Rewrites error responses (status >= 400, JSON) under /v1/messages to Anthropic's shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")) if scope["type"] == "http" else ""
        if not (path == PATH_PREFIX or path.startswith(PATH_PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def wrapped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = _rewrite(start["status"], b"".join(chunks))
                headers = [(k, v) for k, v in start.get("headers", [])
                           if k.lower() not in (b"content-length", b"content-type")]
                headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, wrapped)
