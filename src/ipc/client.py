"""The worker-side IPC client: calls and streams to the engine process over ZeroMQ.

One :class:`EngineClient` per worker process, used from that worker's event loop.
Requests are multiplexed on one DEALER socket by id. The engine acknowledges every
request at once, so a gone engine is noticed quickly: no ack within ``ack_timeout`` or no
answer to pings for ``dead_after`` seconds fails the request with
``EngineUnavailableError`` instead of hanging. Leaving a stream early (the HTTP client
went away) tells the engine to cancel it.

This module is torch-free: workers import it, never the engine.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from src.engine.types import (
    ContextLengthError,
    EngineError,
    EngineUnavailableError,
    QueueTimeoutError,
)

log = logging.getLogger(__name__)


class RemoteError(EngineError):
    """An engine-side handler failed; ``type`` is the name of the engine's exception."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type = type_name


class InvalidParamsError(RemoteError):
    """The engine refused the parameters (a ValueError or validation error there)."""


_KNOWN: dict[str, type[EngineError]] = {
    cls.__name__: cls
    for cls in (EngineError, EngineUnavailableError, QueueTimeoutError, ContextLengthError)
}


def remote_error(payload: dict[str, str]) -> EngineError:
    """The exception to raise for an ``error`` reply."""
    name, message = payload.get("type", "EngineError"), payload.get("message", "")
    if name in _KNOWN:
        return _KNOWN[name](message)
    if name == "ValueError":
        return InvalidParamsError(name, message)
    return RemoteError(name, message)


class EngineClient:
    """Async client of :class:`src.ipc.server.IpcServer`."""

    def __init__(self, address: str, ack_timeout: float = 5.0, dead_after: float = 5.0) -> None:
        self.address = address
        self.ack_timeout = ack_timeout
        self.dead_after = dead_after
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._sock: zmq.asyncio.Socket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unanswered_ping: float | None = None

    # --- public API ------------------------------------------------------------------
    async def call(self, method: str, args: dict[str, Any] | None = None,
                   timeout: float | None = None) -> Any:
        """Run a registered call method in the engine and return its result."""
        rid, replies = self._open("call", method, args)
        try:
            await self._wait_ack(replies)
            reply = await asyncio.wait_for(self._next(replies), timeout)
            if reply["op"] == "result":
                return reply.get("data")
            raise remote_error(reply.get("error") or {})
        except TimeoutError:
            raise EngineUnavailableError(f"the engine did not answer {method!r} in time") from None
        finally:
            self._pending.pop(rid, None)

    async def stream(
        self, method: str, args: dict[str, Any] | None = None
    ) -> AsyncGenerator[Any, None]:
        """Iterate the items of a registered stream method; leaving early cancels it."""
        rid, replies = self._open("stream", method, args)
        finished = False
        try:
            await self._wait_ack(replies)
            while True:
                reply = await self._next(replies)
                op = reply["op"]
                if op == "chunk":
                    yield reply.get("data")
                elif op == "end":
                    finished = True
                    return
                else:
                    finished = True
                    raise remote_error(reply.get("error") or {})
        finally:
            self._pending.pop(rid, None)
            if not finished and self._sock is not None:
                self._send({"id": rid, "op": "cancel"})

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    # --- plumbing --------------------------------------------------------------------
    def _connect(self) -> zmq.asyncio.Socket:
        if self._sock is None:
            # The process-wide context: a private one left to the garbage collector with
            # a socket open would block in term().
            sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.address)
            self._sock = sock
            self._tasks = [
                asyncio.create_task(self._receive_loop()),
                asyncio.create_task(self._watch_engine()),
            ]
        return self._sock

    def _send(self, message: dict[str, Any]) -> None:
        sock = self._connect()
        sock.send(msgpack.packb(message))  # a DEALER send does not block; no need to await

    def _open(self, op: str, method: str,
              args: dict[str, Any] | None) -> tuple[int, asyncio.Queue[dict[str, Any]]]:
        rid = next(self._ids)
        replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending[rid] = replies
        self._send({"id": rid, "op": op, "method": method, "args": args or {}})
        return rid, replies

    async def _wait_ack(self, replies: asyncio.Queue[dict[str, Any]]) -> None:
        try:
            reply = await asyncio.wait_for(replies.get(), self.ack_timeout)
        except TimeoutError:
            raise EngineUnavailableError("the engine is not reachable") from None
        if reply["op"] == "error":
            raise remote_error(reply.get("error") or {})

    @staticmethod
    async def _next(replies: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
        reply = await replies.get()
        if reply["op"] == "dead":
            raise EngineUnavailableError("the engine stopped answering")
        return reply

    async def _receive_loop(self) -> None:
        assert self._sock is not None
        while True:
            payload = await self._sock.recv()
            reply = msgpack.unpackb(payload, strict_map_key=False)
            self._unanswered_ping = None  # any reply proves the engine is alive
            replies = self._pending.get(reply.get("id", -1))
            if replies is not None:
                replies.put_nowait(reply)

    async def _watch_engine(self) -> None:
        """While requests are in flight, ping; fail them all if the engine stays silent."""
        while True:
            await asyncio.sleep(min(1.0, self.dead_after / 3))
            if not self._pending:
                self._unanswered_ping = None
                continue
            now = time.monotonic()
            if self._unanswered_ping is None:
                self._unanswered_ping = now
            elif now - self._unanswered_ping > self.dead_after:
                log.error("the engine has not answered for %.0f s", self.dead_after)
                for replies in self._pending.values():
                    replies.put_nowait({"op": "dead"})
                self._unanswered_ping = None
                continue
            self._send({"id": 0, "op": "ping"})
