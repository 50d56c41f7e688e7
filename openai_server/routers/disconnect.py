"""Stop work for a client that has gone away before its response started.

A streamed response notices a disconnect itself (the SSE generator is cancelled, which
cancels the generation in the engine). Before that, a request may wait in the engine's
queue or, when not streaming, for its whole answer: ``until_disconnected`` runs that wait
and cancels it (and with it the engine request) when the client disconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from openai_server.errors import APIError

T = TypeVar("T")

POLL_SECONDS = 0.25


class ClientDisconnected(APIError):
    """The client closed the connection; nobody is left to answer (nginx's 499)."""

    status = 499
    type = "client_disconnected"


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """The result of ``work``, or ClientDisconnected (``work`` cancelled) if the client left."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_SECONDS)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise ClientDisconnected("the client closed the connection")
    finally:
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:  # its cancellation; the client is gone anyway
                pass
