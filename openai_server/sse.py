"""The one SSE helper: ``data: <json>\\n\\n`` events, then ``data: [DONE]``.
Named events (``event: <type>``, no ``[DONE]``) for the Responses and Messages APIs.

An error raised by the event source after the response has started (status 200 is
already sent) goes out as one ``{"error": {...}}`` event, then ``[DONE]``.

The response is Starlette's ``StreamingResponse`` (one ``send`` per event; a client that
goes away cancels the stream, so the source's ``finally`` stops the engine's work) with a
``: ping`` comment every ``PING_SECONDS`` so that proxies keep an idle stream (a long
prompt being read) open. It replaced sse-starlette, whose per-event timeout scope, signal
and server lookups were more than half of a worker's CPU per streamed token
(``bench/cpu_per_token.py``; figures in docs/performance.md).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import anyio
from pydantic import BaseModel
from starlette.responses import StreamingResponse
from starlette.types import Send

from openai_server.errors import from_exception
from openai_server.protocol import wire

DONE = "[DONE]"
PING_SECONDS = 15.0
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering


class EventStream(StreamingResponse):
    """Server-sent events from an async iterable of ready-framed ``bytes``."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterable[bytes], ping_seconds: float = PING_SECONDS) -> None:
        super().__init__(events, headers=HEADERS)
        self.ping_seconds = ping_seconds

    async def stream_response(self, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._ping, send)
                await super().stream_response(send)
                group.cancel_scope.cancel()
        except BaseExceptionGroup as group_error:  # the caller expects the error itself
            # (Starlette turns an OSError from ``send`` into ClientDisconnect)
            raise group_error.exceptions[0] from None

    async def _ping(self, send: Send) -> None:
        while True:
            await anyio.sleep(self.ping_seconds)
            await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})


def _frame(data: Any) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


async def _events(source: AsyncIterable[BaseModel | dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for item in source:
            yield _frame(wire(item) if isinstance(item, BaseModel) else item)
    except Exception as exc:  # the status line is gone: report in-band
        yield _frame(from_exception(exc).body())
    yield b"data: " + DONE.encode() + b"\n\n"


def sse_response(source: AsyncIterable[BaseModel | dict[str, Any]]) -> EventStream:
    """Stream ``source`` (response chunks) as OpenAI-style server-sent events."""
    return EventStream(_events(source))


async def _named(source: AsyncIterator[BaseModel]) -> AsyncIterator[bytes]:
    async for item in source:
        data = item.wire() if hasattr(item, "wire") else item.model_dump(mode="json")
        kind = str(getattr(item, "type", "message"))
        yield b"event: " + kind.encode() + b"\n" + _frame(data)


def named_sse_response(source: AsyncIterator[BaseModel]) -> EventStream:
    """Stream typed events as ``event: <type>`` + ``data: <json>`` (the Responses API's and
    Anthropic's framing: no ``[DONE]``). ``source`` reports its own errors in-band."""
    return EventStream(_named(source))
