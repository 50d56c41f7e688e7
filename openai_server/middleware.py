"""Cross-cutting ASGI middleware of the API: metrics, rate limits, draining, WebSocket refusals.

Each is one class here and one line in ``create_app``; route handlers know none of them.
What must hold across the N worker processes (counters, rate limits) is kept in the
engine process and reached over the IPC (src/ipc/ops.py), so it is counted once:

- :class:`MetricsMiddleware` reports each response's route template and status to the
  engine (``observe_http``), before the response's last byte leaves, so a client that
  reads /metrics right after its answer sees it counted;
- :class:`RateLimitMiddleware` asks the engine for one hit on the requester's limit
  (``rate_hit``): the API key's own ``rate_limit`` from the keys file, else
  --api_rate_limit, per key (per client address when keys are off); over it, a 429
  envelope with ``Retry-After``. /health, /metrics and /version are exempt;
- :class:`DrainMiddleware` counts in-flight requests and, once the worker is told to
  stop (SIGTERM), answers new ones with a 503 envelope while the others finish;
- :class:`WebSocketMiddleware` answers a WebSocket upgrade with an HTTP error envelope
  (404 for an unknown path, 400 for an HTTP endpoint) instead of a bare 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openai_server.auth import Authenticator, request_key
from openai_server.errors import (
    APIError,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
    error_response,
)
from src.apikeys import key_digest
from src.contract import Engine, HttpObservation, RateHit, RateVerdict

log = logging.getLogger(__name__)

EXEMPT_PATHS = frozenset({"/health", "/metrics", "/version"})


def route_label(scope: Scope) -> str:
    """The matched route's template (bounded label values); 'unmatched' for unknown paths."""
    template = getattr(scope.get("route"), "path", None)
    if not template:
        return "unmatched"
    # A router included with a prefix (/v1) keeps its own template ("/chat/completions"):
    # the prefix is what comes before the template's literal start in the request path.
    path, literal = str(scope.get("path", "")), str(template).split("{", 1)[0]
    at = path.find(literal) if literal else 0
    return path[:at] + str(template) if at > 0 else str(template)


class MetricsMiddleware:
    """Counts every HTTP response by route and status in the engine's registry."""

    def __init__(self, app: ASGIApp, engine_client: Engine) -> None:
        self.app = app
        self.engine_client = engine_client

    async def _observe(self, route: str, status: int) -> None:
        with contextlib.suppress(Exception):  # metrics never fail a request
            await self.engine_client.observe_http(HttpObservation(route=route, status=status))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        pending: asyncio.Task[None] | None = None

        async def observed_send(message: Message) -> None:
            nonlocal pending
            if message["type"] == "http.response.start":
                pending = asyncio.create_task(self._observe(route_label(scope), int(message["status"])))
            elif message["type"] == "http.response.body" and not message.get("more_body") and pending:
                await pending  # counted before the client has the whole answer
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            if pending is not None:
                await pending


class RateLimitMiddleware:
    """One hit per request on the requester's limit, counted by the engine for all workers."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, engine_client: Engine,
                 default_limit: str) -> None:
        self.app = app
        self.authenticator = authenticator
        self.engine_client = engine_client
        self.default_limit = default_limit

    def _identity_and_limit(self, scope: Scope) -> tuple[str, str]:
        keys = self.authenticator.keys
        if keys is not None:
            key = request_key(Headers(scope=scope))
            if key:
                return "key:" + key_digest(key).hex(), keys.rate_limit(key) or self.default_limit
        client = scope.get("client") or ("unknown", 0)
        return f"addr:{client[0]}", self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        identity, limit = self._identity_and_limit(scope)
        if limit:
            try:
                verdict = await self.engine_client.rate_hit(RateHit(identity=identity, limit=limit))
            except Exception as exc:  # the engine (or --rate_limit_storage) is down: fail open
                log.warning("rate limit not checked: %r", exc)
                verdict = RateVerdict(allowed=True)
            if not verdict.allowed:
                retry = max(1, math.ceil(verdict.reset - time.time()))
                error = TooManyRequestsError(
                    f"rate limit exceeded ({verdict.limit} requests per window of {limit}); "
                    f"retry in {retry} s", code="rate_limit_exceeded")
                response = error_response(error)
                response.headers["Retry-After"] = str(retry)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Drain:
    """In-flight HTTP requests of this worker, and whether it is shutting down."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.draining = False


class DrainMiddleware:
    """Counts in-flight requests; while draining, refuses new ones with a 503 envelope."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.drain.draining:
            response = error_response(ServiceUnavailableError(
                "the server is shutting down; retry on another instance or later",
                code="shutting_down"))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        self.drain.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.in_flight -= 1


class EnvelopeCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, with a refused preflight answered as an error envelope."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        error = APIError(f"CORS preflight refused: {bytes(response.body).decode()}", code="cors_refused")
        error.status, error.type = response.status_code, "invalid_request_error"
        refused = error_response(error)
        for name, value in response.headers.items():
            if name.lower().startswith("vary") or name.lower().startswith("access-control"):
                refused.headers[name] = value
        return refused


class WebSocketMiddleware:
    """This API has no WebSocket endpoint: an upgrade gets an HTTP error envelope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _is_http_route(self, scope: Scope) -> bool:
        routes = getattr(scope.get("app"), "routes", [])
        probe = {**scope, "type": "http", "method": "GET"}
        return any(route.matches(dict(probe))[0] is not Match.NONE for route in routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        await receive()  # websocket.connect
        if self._is_http_route(scope):
            error: APIError = APIError("this endpoint speaks HTTP, not WebSocket",
                                       code="websocket_not_supported")
            error.status, error.type = 400, "invalid_request_error"
        else:
            error = NotFoundError(f"no such endpoint: {scope['path']}", code="not_found")
        if "websocket.http.response" not in (scope.get("extensions") or {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps(error.body()).encode()
        headers: list[Any] = [(b"content-type", b"application/json"),
                              (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": error.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
