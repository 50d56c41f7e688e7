"""The one SSE helper: ``data: <json>\\n\\n`` events, then ``data: [DONE]``.
Named events (``event: <type>``, no ``[DONE]``) for the Responses and Messages APIs.

An error raised by the event source after the response has started (status 200 is
already sent) goes out as one ``{"error": {...}}`` event, then ``[DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from pydantic import BaseModel
from sse_starlette import EventSourceResponse

from openai_server.errors import from_exception
from openai_server.protocol import wire

DONE = "[DONE]"


async def _events(source: AsyncIterable[BaseModel | dict[str, Any]]) -> AsyncIterator[dict[str, str]]:
    try:
        async for item in source:
            yield {"data": json.dumps(wire(item) if isinstance(item, BaseModel) else item)}
    except Exception as exc:  # the status line is gone: report in-band
        yield {"data": json.dumps(from_exception(exc).body())}
    yield {"data": DONE}


def sse_response(source: AsyncIterable[BaseModel | dict[str, Any]]) -> EventSourceResponse:
    """Stream ``source`` (response chunks) as OpenAI-style server-sent events."""
    return EventSourceResponse(_events(source), sep="\n", ping=15)


async def _named(source: AsyncIterator[BaseModel]) -> AsyncIterator[dict[str, str]]:
    async for item in source:
        data = item.wire() if hasattr(item, "wire") else item.model_dump(mode="json")
        yield {"event": str(getattr(item, "type", "message")), "data": json.dumps(data)}


def named_sse_response(source: AsyncIterator[BaseModel]) -> EventSourceResponse:
    """Stream typed events as ``event: <type>`` + ``data: <json>`` (the Responses API's and
    Anthropic's framing: no ``[DONE]``). ``source`` reports its own errors in-band."""
    return EventSourceResponse(_named(source), sep="\n", ping=15)
