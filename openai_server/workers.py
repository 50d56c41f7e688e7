"""Spawn and supervise the OpenAI API worker processes, all on one port.

The engine process binds the listening socket once and passes it to each worker
(``pass_fds``), so N uvicorn processes accept connections on the same address and the
kernel spreads them. A supervisor thread restarts a worker that dies (within about a
second). Workers run in their own process group, so Ctrl-C in a terminal reaches only
the engine process, which then stops them all: SIGTERM, then SIGKILL after a grace
period. A worker whose parent disappears exits by itself.

The pool runs in the engine process (src/openai_service.py starts it) but stays in
openai_server/ beside the worker it spawns: it writes the config that worker.py reads,
and it imports only the standard library and the settings, nothing of the engine.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from src.settings import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CRASH_LOOP_SECONDS = 3.0  # a worker that dies sooner after its start is restarted with a delay
MAX_BACKOFF_SECONDS = 30.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket for the workers to share (IPv6 when ``host`` is one).

    ``localhost`` binds 127.0.0.1, as uvicorn does: resolvers that list ::1 first would
    otherwise leave http://127.0.0.1:<port> unanswered.
    """
    host = "127.0.0.1" if host == "localhost" else host
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class WorkerPool:
    """``count`` worker processes serving the API on ``sock``; restarted when they die."""

    def __init__(self, settings: Settings, ipc_address: str, sock: socket.socket,
                 count: int, poll_seconds: float = 0.5) -> None:
        self.settings = settings
        self.ipc_address = ipc_address
        self.sock = sock
        self.count = count
        self.poll_seconds = poll_seconds
        self.restarts = 0
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, name="openai-workers", daemon=True)

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._procs]

    def start(self) -> None:
        with self._lock:
            self._procs = [self._spawn() for _ in range(self.count)]
        self._thread.start()

    def _config(self) -> dict[str, Any]:
        return {
            "settings": self.settings.model_dump(mode="json"),
            "ipc_address": self.ipc_address,
            "fd": self.sock.fileno(),
            "parent_pid": os.getpid(),
        }

    def _spawn(self) -> subprocess.Popen[bytes]:
        # The engine's working directory, so that relative paths in the flags (a keys
        # file, an auth file) mean the same in the workers; the code is found via PYTHONPATH.
        paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
        proc = subprocess.Popen(
            [sys.executable, "-m", "openai_server.worker"],
            stdin=subprocess.PIPE, cwd=os.getcwd(), env=env, pass_fds=(self.sock.fileno(),),
            start_new_session=True,
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(self._config()).encode())
        proc.stdin.close()
        log.info("OpenAI API worker %d started", proc.pid)
        return proc

    def _supervise(self) -> None:
        started = [time.monotonic()] * self.count
        failures = [0] * self.count  # quick deaths in a row, per slot
        due: list[float | None] = [None] * self.count  # when a backed-off restart is due
        while not self._stopping.wait(self.poll_seconds):
            with self._lock:
                for i, proc in enumerate(self._procs):
                    code = proc.poll()
                    now = time.monotonic()
                    if code is None or self._stopping.is_set():
                        continue
                    if due[i] is None:
                        quick = now - started[i] < CRASH_LOOP_SECONDS
                        failures[i] = failures[i] + 1 if quick else 0
                        delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** failures[i]) if quick else 0.0
                        due[i] = now + delay
                        log.warning("OpenAI API worker %d exited (%s); restarting it%s", proc.pid,
                                    code, f" in {delay:.0f} s" if delay else "")
                    if now >= (due[i] or 0.0):
                        self._procs[i] = self._spawn()
                        started[i], due[i] = time.monotonic(), None
                        self.restarts += 1

    def stop(self, grace_seconds: float = 5.0) -> None:
        """SIGTERM every worker, SIGKILL those still alive after ``grace_seconds``."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("OpenAI API worker %d did not stop; killing it", proc.pid)
                proc.kill()
                proc.wait(timeout=5)
