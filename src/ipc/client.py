"""The worker-side IPC client: calls and streams to the engine process, HTTP on a Unix socket.

One :class:`EngineClient` per worker process, used from that worker's event loop; it keeps
a pool of keep-alive connections to the engine's socket (httpx). A gone engine is noticed
at once: the socket refuses the connection, or drops it mid-answer, and the request fails
with ``EngineUnavailableError`` instead of hanging. Leaving a stream early (the HTTP
client went away) tells the engine to cancel it.

This module is torch-free: workers import it, never the engine.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import msgpack

from src.errors import EngineUnavailableError, from_payload
from src.ipc import MSGPACK

log = logging.getLogger(__name__)

CANCEL_TIMEOUT = 2.0


class EngineClient:
    """Async client of :class:`src.ipc.server.IpcServer` at the Unix socket ``address``."""

    def __init__(self, address: str, connect_timeout: float = 5.0) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self._http: httpx.AsyncClient | None = None

    # --- public API ------------------------------------------------------------------
    async def call(self, method: str, args: dict[str, Any] | None = None,
                   timeout: float | None = None) -> Any:
        """Run a registered call method in the engine and return its result."""
        try:
            response = await self._client().post(
                f"/call/{method}", content=msgpack.packb(args or {}),
                timeout=httpx.Timeout(timeout, connect=self.connect_timeout),
            )
        except httpx.TimeoutException:
            raise EngineUnavailableError(f"the engine did not answer {method!r} in time") from None
        except httpx.TransportError as exc:
            raise EngineUnavailableError(f"the engine is not reachable ({exc})") from None
        reply = msgpack.unpackb(response.content, strict_map_key=False)
        if reply["op"] == "result":
            return reply.get("data")
        raise from_payload(reply.get("error") or {})

    async def stream(
        self, method: str, args: dict[str, Any] | None = None
    ) -> AsyncGenerator[Any, None]:
        """Iterate the items of a registered stream method; leaving early cancels it."""
        stream_id = uuid.uuid4().hex
        finished = False
        last: dict[str, Any] | None = None
        try:
            async with self._client().stream(
                "POST", f"/stream/{method}", content=msgpack.packb(args or {}),
                headers={"X-Stream-Id": stream_id},
            ) as response:
                unpacker = msgpack.Unpacker(strict_map_key=False)
                async for data in response.aiter_raw():  # read to the body's end: keep-alive
                    unpacker.feed(data)
                    for reply in unpacker:
                        if reply["op"] == "chunk":
                            yield reply.get("data")
                        else:
                            last = reply
            finished = True
            if last is None:
                raise EngineUnavailableError("the engine ended a stream without its last message")
            if last["op"] != "end":
                raise from_payload(last.get("error") or {})
        except httpx.TransportError as exc:
            finished = True
            raise EngineUnavailableError(f"the engine stopped answering ({exc})") from None
        finally:
            if not finished:  # the caller left: the dropped connection and this both cancel
                await self._cancel(stream_id)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- plumbing --------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=self.address),
                base_url="http://engine",
                headers={"Content-Type": MSGPACK},
                # Every open stream holds a connection: no cap, or requests would queue
                # here, out of the engine's FIFO and its --max_queue_time.
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
                timeout=httpx.Timeout(None, connect=self.connect_timeout),
            )
        return self._http

    async def _cancel(self, stream_id: str) -> None:
        """Tell the engine, in case the stream is still queued there (nothing to write to)."""
        with contextlib.suppress(Exception):
            await self.call("cancel", {"id": stream_id}, timeout=CANCEL_TIMEOUT)
