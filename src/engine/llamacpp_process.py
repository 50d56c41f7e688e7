"""The ``llama-server`` child process: started, health-checked, restarted if it dies, and
never left behind.

Three guarantees, each against a way it was seen to leak (issue 22):

- **It dies with the engine.** On Linux the child asks the kernel for ``SIGKILL`` when its
  parent goes (``prctl(PR_SET_PDEATHSIG)``), so a ``kill -9`` of the engine (what the OOM
  killer does) takes it along. The kernel's "parent" is the *thread* that forked, so every
  child is forked by one spawner thread that lives as long as the process (a child forked
  from the supervisor thread would be killed when that thread ends). A child whose parent
  died between ``fork`` and ``prctl`` exits at once.
- **No restart once shutdown has begun.** ``stop()`` sets the stopping flag under the same
  lock that a restart takes to start a process, so a supervisor waking from its back-off
  after ``stop()`` starts nothing.
- **A stop waits for it, then kills it**: ``SIGTERM``, up to ``grace`` seconds, ``SIGKILL``.
  The child runs in its own session, so a Ctrl-C in the terminal reaches only the engine,
  which stops it in order (instead of the child dying first and being restarted).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

import httpx

from src.errors import EngineUnavailableError

log = logging.getLogger(__name__)

START_TIMEOUT = 180.0
STOP_GRACE = 10.0
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _death_signal_setter() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when its parent dies (Linux), or
    None where the kernel has no such request. libc and prctl are looked up here, in the
    parent: the forked child only calls them."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def set_death_signal() -> None:
        if prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0 or os.getppid() != parent:
            os._exit(127)  # no guarantee (or the parent is gone already): do not run at all

    return set_death_signal


class _Spawner:
    """One daemon thread that forks every child, so the kernel's "parent" of each child is a
    thread that ends only with the process (see the module docstring)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], subprocess.Popen[str]], Future[subprocess.Popen[str]]]]
        self._jobs = queue.SimpleQueue()
        self._pid = os.getpid()
        threading.Thread(target=self._run, daemon=True, name="llama-spawner").start()

    def _run(self) -> None:
        while True:
            start, result = self._jobs.get()
            try:
                result.set_result(start())
            except BaseException as exc:  # handed to the caller, who raises it
                result.set_exception(exc)

    def spawn(self, start: Callable[[], subprocess.Popen[str]]) -> subprocess.Popen[str]:
        result: Future[subprocess.Popen[str]] = Future()
        self._jobs.put((start, result))
        return result.result()


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def spawn(start: Callable[[], subprocess.Popen[str]]) -> subprocess.Popen[str]:
    """Run ``start`` (which makes a Popen) on the process-long spawner thread."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner._pid != os.getpid():  # none yet, or a forked copy
            _spawner = _Spawner()
        spawner = _spawner
    return spawner.spawn(start)


class LlamaServer:
    """A supervised ``llama-server`` child: started, health-checked, restarted if it dies,
    killed with the engine."""

    def __init__(self, binary: str, args: list[str], grace: float = STOP_GRACE) -> None:
        self.binary = binary
        self.args = args
        self.grace = grace
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.output: deque[str] = deque(maxlen=60)
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a start and a stop never interleave

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stopping(self) -> bool:
        """Shutdown has begun: the child is not restarted any more."""
        return self._stopping.is_set()

    def _popen(self) -> subprocess.Popen[str]:
        command = [self.binary, *self.args, "--host", "127.0.0.1", "--port", str(self.port)]
        log.info("starting llama.cpp: %s", " ".join(command))
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_death_signal_setter())

    def start(self) -> None:
        """Start the child and wait until it answers /health; EngineUnavailableError when it
        does not (or when shutdown has begun)."""
        with self._lock:
            if self.stopping:
                raise EngineUnavailableError("llama.cpp's server is shutting down")
            process = self.process = spawn(self._popen)
        threading.Thread(target=self._drain, args=(process,), daemon=True, name="llama-log").start()
        self._wait_ready(process)
        threading.Thread(target=self._supervise, args=(process,), daemon=True, name="llama-watch").start()

    def _drain(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line.rstrip())
            log.debug("llama.cpp: %s", line.rstrip())

    def _wait_ready(self, process: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None and not self.stopping:
            try:
                if httpx.get(self.url + "/health", timeout=2.0, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        tail = "\n".join(list(self.output)[-15:])
        self.stop()
        raise EngineUnavailableError(f"llama.cpp's server did not start:\n{tail}")

    def _supervise(self, process: subprocess.Popen[str]) -> None:
        process.wait()
        if self.stopping:
            return
        log.error("llama.cpp's server exited with %s; restarting it:\n%s", process.returncode,
                  "\n".join(list(self.output)[-10:]))
        self.restarts += 1
        if self._stopping.wait(min(5.0, 0.5 * self.restarts)):
            return  # stopped during the back-off
        try:
            self.start()  # same port: the remote backend's client reconnects
        except EngineUnavailableError:
            if not self.stopping:
                log.exception("llama.cpp's server could not be restarted")

    def stop(self) -> None:
        """Stop for good: no restart from now on; SIGTERM, then SIGKILL after ``grace`` s.
        Returns once the child has exited."""
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            log.warning("llama.cpp's server %d did not stop in %.0f s; killing it", process.pid, self.grace)
            process.kill()
            process.wait(timeout=10)
