"""One OpenAI API worker process: ``python -m openai_server.worker`` (started by workers.py).

It reads its configuration as JSON on stdin (the settings, the IPC address of the
engine, the listening socket's file descriptor and the parent's pid), then serves the
app with uvicorn on the inherited socket (over TLS with --ssl_certfile). It loads no model and never imports torch.
It exits (code 1) when its parent (the engine process) goes away, so no worker is
orphaned. SIGTERM drains it: new requests get a 503 envelope while those in flight
finish, for up to --shutdown_timeout seconds, then it exits with code 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import time
from types import FrameType
from typing import Any

import uvicorn
import uvloop
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from openai_server.app import create_app
from openai_server.middleware import Drain
from src.ipc.client import EngineClient
from src.settings import Settings

log = logging.getLogger(__name__)


class RefusingWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, with a refused upgrade (the HTTP error envelope
    that WebSocketMiddleware sends as ``websocket.http.response``) counted as a finished
    handshake: uvicorn 0.54 logs "ASGI callable returned without completing handshake" at
    ERROR for every refusal otherwise."""

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True


class DrainingServer(uvicorn.Server):
    """uvicorn, but SIGTERM drains: new requests get 503 (DrainMiddleware) while those in
    flight finish, for up to ``timeout`` seconds; then the worker exits (code 0)."""

    def __init__(self, config: uvicorn.Config, drain: Drain, timeout: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.timeout = timeout
        self.drain_deadline: float | None = None
        self.parent_gone = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain.draining:  # a second signal: stop now
            self.should_exit = self.force_exit = True
            return
        self.drain.draining = True
        self.drain_deadline = time.monotonic() + self.timeout
        log.info("worker %d draining %d request(s)", os.getpid(), self.drain.in_flight)

    async def watch(self, parent_pid: int) -> None:
        """Exit once drained (or at the deadline), or when the engine process is gone."""
        while not self.should_exit:
            await asyncio.sleep(0.1)
            if os.getppid() != parent_pid:
                log.warning("the engine process %d is gone; worker %d exits", parent_pid, os.getpid())
                self.parent_gone = self.should_exit = True
            elif self.drain_deadline is not None and (
                    self.drain.in_flight == 0 or time.monotonic() > self.drain_deadline):
                self.should_exit = True


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS arguments from --ssl_certfile, --ssl_keyfile and --ssl_keyfile_password
    (none without a certificate: plain HTTP)."""
    if not settings.ssl_certfile:
        return {}
    return {"ssl_certfile": settings.ssl_certfile, "ssl_keyfile": settings.ssl_keyfile or None,
            "ssl_keyfile_password": settings.ssl_keyfile_password or None}


def serve(config: dict[str, Any]) -> int:
    settings = Settings.model_validate(config["settings"])
    logging.basicConfig(
        level=logging.DEBUG if settings.verbose else logging.INFO,
        format=f"%(asctime)s %(levelname)s worker-{os.getpid()} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per IPC call
    client = EngineClient(config["ipc_address"])
    app = create_app(settings, client)
    sock = socket.socket(fileno=int(config["fd"]))
    server = DrainingServer(uvicorn.Config(
        app, log_level="debug" if settings.verbose else "warning", access_log=settings.verbose,
        timeout_graceful_shutdown=1, lifespan="off", ws=RefusingWebSocketProtocol, **tls_options(settings),
    ), app.state.drain, settings.shutdown_timeout)

    async def main() -> None:
        watcher = asyncio.create_task(server.watch(int(config["parent_pid"])))
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()
            await client.close()

    uvloop.run(main())  # its loop costs 15% less CPU per streamed token than asyncio's
    return 1 if server.parent_gone else 0


if __name__ == "__main__":
    sys.exit(serve(json.loads(sys.stdin.read())))
