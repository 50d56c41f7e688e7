"""The engine-side IPC server: a registry of methods served as HTTP/1.1 on a Unix socket.

Two kinds of method, both plain synchronous Python (the engine's own code is synchronous):

- a *call* handler ``handler(args: dict) -> Any`` answers once (health, models, tokenize);
- a *stream* handler ``handler(args: dict, cancel: threading.Event) -> Iterator[Any]`` yields
  items (evaluate() chunks). When the client cancels (its HTTP client went away) ``cancel``
  is set and the iterator is closed, so the engine stops that generation within one
  token step.

Each connection is served by its own thread (the standard library's threading HTTP
server), and a stream's items are written to the socket by the thread that produces
them: a token reaches the worker with one wake-up, where a broker thread plus ZeroMQ's
I/O threads took four (measured in docs/performance.md).

Every method the engine serves is *typed*: ``register_typed(method, RequestType, handler)``
(``register_typed_stream`` for a stream) decodes the body as the contract's ``RequestType``
(src/contract/; a wrong or unknown field is refused before the handler runs) and the handler
returns, or yields, contract structs::

    server.register_typed("embed", EmbedRequest, methods.embed)                  # call
    server.register_typed_stream("speech", SpeechRequest, speech)                # stream

and the worker side calls the contract's ``Engine`` method (``await client.embed(...)``).
``register`` / ``register_stream`` take plain maps: the transport's own tests use them.
A handler's exception goes back to the caller as ``{code, message, param}``
(``src.errors.to_payload``): the client re-raises the domain error of that stable code,
and a bug as a plain ``DomainError`` (``internal_error``) without its internals. The wire format is in ``src/ipc/__init__.py``.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

from src.contract import CancelRequest
from src.errors import to_payload
from src.ipc import MSGPACK
from src.ipc.codec import Chunk, End, Result, decode, decode_any, encode, error_body

log = logging.getLogger(__name__)

CallHandler = Callable[[Any], Any]
StreamHandler = Callable[[Any, threading.Event], Iterator[Any]]
_END = encode(End())
_HEAD = f"HTTP/1.1 200 OK\r\nContent-Type: {MSGPACK}\r\n".encode()
REPLY_HEAD = _HEAD + b"Content-Length: %d\r\n\r\n"
STREAM_HEAD = _HEAD + b"Transfer-Encoding: chunked\r\n\r\n"


class _Listener(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512  # the listen queue: every worker's streams connect at once under load

    def __init__(self, path: str, ipc: IpcServer) -> None:
        self.ipc = ipc
        super().__init__(path, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A worker that went away mid-request is routine; anything else is logged."""
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("engine IPC connection dropped", exc_info=True)
        else:
            log.exception("engine IPC request failed")


class _Handler(BaseHTTPRequestHandler):
    """One connection (keep-alive): POST /call/<method> and /stream/<method>."""

    protocol_version = "HTTP/1.1"
    server: _Listener
    _head = b""

    def setup(self) -> None:
        super().setup()
        self.server.ipc.track(self.connection, True)

    def finish(self) -> None:
        self.server.ipc.track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        log.debug("engine IPC: " + format, *args)

    def do_POST(self) -> None:
        _, kind, name = (self.path.split("/", 2) + ["", ""])[:3]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ipc = self.server.ipc
        if kind == "call" and name in ipc.calls:
            body = ipc.answer(ipc.calls[name], ipc.types.get(name), raw)
        elif kind == "stream" and name in ipc.streams:
            self._stream(ipc.streams[name], ipc.types.get(name), raw, self.headers.get("X-Stream-Id") or "")
            return
        else:
            body = error_body(to_payload(KeyError(f"no {kind} method {name!r}")))
        self.wfile.write(REPLY_HEAD % len(body) + body)

    def _stream(self, handler: StreamHandler, request_type: Any, raw: bytes, stream_id: str) -> None:
        """A stream's items, then its end; a request that does not decode ends it at once
        with the error (still a stream: the client reads one)."""
        self._head = STREAM_HEAD  # sent with the first item: one write, one wake-up
        cancel = self.server.ipc.open_stream(stream_id)
        items: Iterator[Any] | None = None
        try:
            items = handler(self.server.ipc.arguments(request_type, raw), cancel)
            for item in items:
                if cancel.is_set():
                    break
                self._chunk(encode(Chunk(item)))
            last = _END
        except (BrokenPipeError, ConnectionResetError):  # the worker left: stop the work
            cancel.set()
            self.close_connection = True
            return
        except Exception as exc:  # sent even after a cancel: a client that left ignores it
            log.debug("IPC stream failed: %r", exc)
            last = error_body(to_payload(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            self.server.ipc.close_stream(stream_id)
        try:
            self._chunk(last)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%s%X\r\n%s\r\n" % (self._head, len(data), data))  # one write: one wake-up
        self._head = b""


class IpcServer:
    """Serves registered methods to engine clients on the Unix socket at ``address``."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.calls: dict[str, CallHandler] = {}
        self.streams: dict[str, StreamHandler] = {}
        self.types: dict[str, Any] = {}  # method -> the contract type of its request
        self._cancels: dict[str, threading.Event] = {}
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: _Listener | None = None
        self.register_typed("cancel", CancelRequest, lambda request: self.cancel(request.id))

    # --- the registry --------------------------------------------------------------
    def register(self, method: str, handler: CallHandler) -> None:
        """Answer ``method`` once per request with ``handler(args)``."""
        self.calls[method] = handler

    def register_stream(self, method: str, handler: StreamHandler) -> None:
        """Stream the items of ``handler(args, cancel)`` for ``method``."""
        self.streams[method] = handler

    def register_typed(self, method: str, request_type: type, handler: CallHandler) -> None:
        """Like :meth:`register`, with the body decoded as ``request_type`` (a contract struct)
        and the answer a contract struct."""
        self.types[method] = request_type
        self.calls[method] = handler

    def register_typed_stream(self, method: str, request_type: type, handler: StreamHandler) -> None:
        """Like :meth:`register_stream`, with the body decoded as ``request_type`` and contract
        structs as the items."""
        self.types[method] = request_type
        self.streams[method] = handler

    @property
    def methods(self) -> list[str]:
        return sorted([*self.calls, *self.streams])

    # --- life cycle ----------------------------------------------------------------
    def start(self) -> None:
        """Bind the socket and serve in a background thread; returns once bound."""
        if os.path.exists(self.address):  # left by a killed run; nobody listens there
            os.unlink(self.address)
        self._listener = _Listener(self.address, self)
        threading.Thread(
            target=self._listener.serve_forever, kwargs={"poll_interval": 0.5},
            name="ipc-server", daemon=True,
        ).start()
        log.info("engine IPC listening on %s (%s)", self.address, ", ".join(self.methods))

    def stop(self) -> None:
        """Stop accepting, drop every connection, then cancel every stream.

        Connections go first: a stream woken by its cancel must find its socket gone, or
        it could still write a clean end and the worker would take a cut answer for a whole one.
        """
        if self._listener is not None:
            self._listener.shutdown()
            self._listener.server_close()
            self._listener = None
        with self._lock:
            events, connections = list(self._cancels.values()), list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for event in events:
            event.set()
        if os.path.exists(self.address):
            os.unlink(self.address)

    # --- used by the connection threads ---------------------------------------------
    @staticmethod
    def arguments(request_type: Any, raw: bytes) -> Any:
        """The request of a method: its contract type, or a plain map for an untyped one."""
        return decode(request_type, raw) if request_type is not None else decode_any(raw)

    def answer(self, handler: CallHandler, request_type: Any, raw: bytes) -> bytes:
        """The packed reply to a call; a result the codec cannot carry is an error too."""
        try:
            return encode(Result(handler(self.arguments(request_type, raw))))
        except Exception as exc:
            log.debug("IPC call failed: %r", exc)
            return error_body(to_payload(exc))

    def open_stream(self, stream_id: str) -> threading.Event:
        event = threading.Event()
        if stream_id:
            with self._lock:
                self._cancels[stream_id] = event
        return event

    def close_stream(self, stream_id: str) -> None:
        with self._lock:
            self._cancels.pop(stream_id, None)

    def cancel(self, stream_id: str) -> None:
        with self._lock:
            event = self._cancels.get(stream_id)
        if event is not None:
            event.set()

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
