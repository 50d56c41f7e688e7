"""One OpenAI API worker process: ``python -m openai_server.worker`` (started by workers.py).

It reads its configuration as JSON on stdin (the settings, the IPC address of the
engine, the listening socket's file descriptor and the parent's pid), then serves the
app with uvicorn on the inherited socket. It loads no model and never imports torch.
It exits when its parent (the engine process) goes away, so no worker is orphaned.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from typing import Any

import uvicorn

from openai_server.app import create_app
from src.ipc.client import EngineClient
from src.settings import Settings

log = logging.getLogger(__name__)


async def _watch_parent(parent_pid: int, server: uvicorn.Server) -> None:
    while os.getppid() == parent_pid:
        await asyncio.sleep(0.5)
    log.warning("the engine process %d is gone; worker %d exits", parent_pid, os.getpid())
    server.should_exit = True


def serve(config: dict[str, Any]) -> None:
    settings = Settings.model_validate(config["settings"])
    logging.basicConfig(
        level=logging.DEBUG if settings.verbose else logging.INFO,
        format=f"%(asctime)s %(levelname)s worker-{os.getpid()} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    client = EngineClient(config["ipc_address"])
    app = create_app(settings, client)
    sock = socket.socket(fileno=int(config["fd"]))
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="debug" if settings.verbose else "warning", access_log=settings.verbose,
        timeout_graceful_shutdown=3, lifespan="off",
    ))

    async def main() -> None:
        watcher = asyncio.create_task(_watch_parent(int(config["parent_pid"]), server))
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()
            await client.close()

    asyncio.run(main())


if __name__ == "__main__":
    serve(json.loads(sys.stdin.read()))
