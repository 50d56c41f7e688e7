"""Start the OpenAI API from the engine process: ``start(settings, evaluator) -> Service``.

The engine process (generate.py) runs the IPC server over its evaluator and binds the
API port; ``--openai_workers`` worker processes (openai_server.worker) serve HTTP on it
and reach the engine over IPC. ``Service.stop()`` stops the workers, then the IPC server.

This is engine start-up, so it lives here and not in openai_server/, which holds only
what runs in a worker (tests/unit/test_worker_imports.py): importing the IPC services
loads the evaluator and the document store. The pool that spawns and restarts the
workers (openai_server.workers) stays beside the worker it starts: it imports nothing
of the engine, and the worker's start-up protocol (its config on stdin, the inherited
socket) is written and read in one package.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from openai_server.workers import WorkerPool, bind_socket
from src.ipc.server import IpcServer
from src.ipc.services import register_engine_methods
from src.settings import Settings

if TYPE_CHECKING:
    from src.evaluate import Evaluator
    from src.media import MediaServices

log = logging.getLogger(__name__)


class OpenAIService:
    """The running API: the engine's IPC server and the worker pool."""

    def __init__(self, ipc: IpcServer, pool: WorkerPool, ipc_dir: Path) -> None:
        self.ipc = ipc
        self.pool = pool
        self.ipc_dir = ipc_dir

    def stop(self) -> None:
        self.pool.stop(grace_seconds=self.pool.settings.shutdown_timeout + 5)
        self.pool.sock.close()
        self.ipc.stop()
        shutil.rmtree(self.ipc_dir, ignore_errors=True)


def start(settings: Settings, evaluator: Evaluator, media: MediaServices | None = None) -> OpenAIService:
    """Serve the engine (and its speech and image services) over IPC and start the API
    workers on --server_name:--openai_port."""
    ipc_dir = Path(tempfile.mkdtemp(prefix="h2ogpt-ipc-"))
    ipc = IpcServer(str(ipc_dir / "engine.sock"))
    register_engine_methods(ipc, evaluator, media)
    ipc.start()
    try:
        sock = bind_socket(settings.server_name, settings.openai_port)
    except OSError as exc:
        ipc.stop()
        shutil.rmtree(ipc_dir, ignore_errors=True)
        raise RuntimeError(
            f"cannot listen on {settings.server_name}:{settings.openai_port} ({exc}); "
            "choose another --openai_port"
        ) from exc
    pool = WorkerPool(settings, ipc.address, sock, settings.openai_workers)
    pool.start()
    log.info("OpenAI API on %s://%s:%d/v1 with %d worker(s)", "https" if settings.ssl_certfile else "http",
             settings.server_name, settings.openai_port, settings.openai_workers)
    return OpenAIService(ipc, pool, ipc_dir)
