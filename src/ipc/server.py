"""The engine-side IPC server: a registry of methods served over a ZeroMQ ROUTER socket.

Two kinds of method, both plain synchronous Python (the engine's own code is synchronous):

- a *call* handler ``handler(args: dict) -> Any`` answers once (health, models, count_tokens);
  it runs in a thread pool so a slow one never blocks the socket.
- a *stream* handler ``handler(args: dict, cancel: threading.Event) -> Iterator[Any]`` yields
  items (evaluate() chunks); each stream runs in its own thread. When the client cancels
  (its HTTP client went away) ``cancel`` is set and the iterator is closed, so the engine
  stops that generation within one token step.

Adding a service method is two lines in ``src/ipc/services.py``::

    server.register("embed", lambda args: embedder.embed(args["texts"]))        # call
    server.register_stream("ingest", lambda args, cancel: ingest(args, cancel))  # stream

and the worker side calls ``await engine_client.call("embed", {"texts": [...]})`` or
``async for item in engine_client.stream("ingest", {...})`` from a router.

Every value crossing the socket must be msgpack-able (dicts, lists, str, int, float, bool,
None, bytes). A handler's exception goes back to the caller as ``{type, message}``: the
client re-raises the engine's own error types (src.engine.types) by name, and anything
else as ``RemoteError``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack
import zmq
import zmq.asyncio

log = logging.getLogger(__name__)

CallHandler = Callable[[dict[str, Any]], Any]
StreamHandler = Callable[[dict[str, Any], threading.Event], Iterator[Any]]


def error_payload(exc: BaseException) -> dict[str, str]:
    """How an exception crosses the socket: its class name and its message."""
    name = type(exc).__name__
    if name == "ValidationError":  # pydantic: the caller's parameters are wrong
        name = "ValueError"
    return {"type": name, "message": str(exc) or name}


class IpcServer:
    """Serves registered methods to engine clients; runs its own event loop in a thread."""

    def __init__(self, address: str, call_threads: int = 8) -> None:
        self.address = address
        self._calls: dict[str, CallHandler] = {}
        self._streams: dict[str, StreamHandler] = {}
        self._cancels: dict[tuple[bytes, int], threading.Event] = {}
        self._pool = ThreadPoolExecutor(call_threads, thread_name_prefix="ipc-call")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[list[bytes]] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None

    # --- the registry --------------------------------------------------------------
    def register(self, method: str, handler: CallHandler) -> None:
        """Answer ``method`` once per request with ``handler(args)``."""
        self._calls[method] = handler

    def register_stream(self, method: str, handler: StreamHandler) -> None:
        """Stream the items of ``handler(args, cancel)`` for ``method``."""
        self._streams[method] = handler

    @property
    def methods(self) -> list[str]:
        return sorted([*self._calls, *self._streams])

    # --- life cycle ----------------------------------------------------------------
    def start(self) -> None:
        """Bind the socket and serve in a background thread; returns once bound."""
        self._thread = threading.Thread(target=self._run, name="ipc-server", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=5)
        for event in list(self._cancels.values()):
            event.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); logged if after start
            self._error = exc
            self._ready.set()
            log.exception("IPC server stopped")

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._outbox = asyncio.Queue()
        self._stopping = asyncio.Event()
        context = zmq.asyncio.Context()
        sock = context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.address)
        self._ready.set()
        log.info("engine IPC listening on %s (%s)", self.address, ", ".join(self.methods))
        sender = asyncio.create_task(self._send_loop(sock))
        receiver = asyncio.create_task(self._receive_loop(sock))
        await self._stopping.wait()
        receiver.cancel()
        sender.cancel()
        sock.close(0)
        context.term()

    async def _send_loop(self, sock: zmq.asyncio.Socket) -> None:
        assert self._outbox is not None
        while True:
            frames = await self._outbox.get()
            await sock.send_multipart(frames)

    async def _receive_loop(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            peer, payload = await sock.recv_multipart()
            try:
                message = msgpack.unpackb(payload, strict_map_key=False)
                self._dispatch(peer, message)
            except Exception:
                log.exception("bad IPC message from a client")

    # --- requests ------------------------------------------------------------------
    def _post(self, peer: bytes, message: dict[str, Any]) -> None:
        """Queue a reply; safe from any thread."""
        assert self._loop is not None and self._outbox is not None
        frames = [peer, msgpack.packb(message)]
        try:
            self._loop.call_soon_threadsafe(self._outbox.put_nowait, frames)
        except RuntimeError:  # the server stopped: nobody to tell
            log.debug("IPC server stopped; dropping a reply")

    def _dispatch(self, peer: bytes, message: dict[str, Any]) -> None:
        op, rid = message.get("op"), message.get("id", 0)
        if op == "ping":
            self._post(peer, {"id": rid, "op": "pong"})
            return
        if op == "cancel":
            event = self._cancels.get((peer, rid))
            if event is not None:
                event.set()
            return
        method, args = message.get("method", ""), message.get("args") or {}
        if op == "call" and method in self._calls:
            self._post(peer, {"id": rid, "op": "ack"})
            self._pool.submit(self._answer, peer, rid, self._calls[method], args)
        elif op == "stream" and method in self._streams:
            self._post(peer, {"id": rid, "op": "ack"})
            cancel = threading.Event()
            self._cancels[(peer, rid)] = cancel
            threading.Thread(
                target=self._stream, args=(peer, rid, self._streams[method], args, cancel),
                name=f"ipc-stream-{rid}", daemon=True,
            ).start()
        else:
            error = {"type": "UnknownMethodError", "message": f"no {op} method {method!r}"}
            self._post(peer, {"id": rid, "op": "error", "error": error})

    def _answer(self, peer: bytes, rid: int, handler: CallHandler, args: dict[str, Any]) -> None:
        try:
            self._post(peer, {"id": rid, "op": "result", "data": handler(args)})
        except Exception as exc:
            log.debug("IPC call failed: %r", exc)
            self._post(peer, {"id": rid, "op": "error", "error": error_payload(exc)})

    def _stream(
        self, peer: bytes, rid: int, handler: StreamHandler, args: dict[str, Any],
        cancel: threading.Event,
    ) -> None:
        items: Iterator[Any] | None = None
        try:
            items = handler(args, cancel)
            for item in items:
                if cancel.is_set():
                    break
                self._post(peer, {"id": rid, "op": "chunk", "data": item})
            self._post(peer, {"id": rid, "op": "end"})
        except Exception as exc:  # sent even after a cancel: a client that left ignores it
            log.debug("IPC stream failed: %r", exc)
            self._post(peer, {"id": rid, "op": "error", "error": error_payload(exc)})
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            self._cancels.pop((peer, rid), None)
