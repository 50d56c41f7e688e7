"""The llama-server supervisor (src/engine/llamacpp_process.py) on a stand-in child
(tests/llama_standin.py): it dies with the engine even when started from a thread that has
ended, a crash is restarted, nothing is restarted once stop() has begun, and a child that
ignores SIGTERM is killed. The same against the real llama-server: tests/e2e/test_llamacpp_lifecycle.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

from src.engine.llamacpp_process import LlamaServer
from src.errors import EngineUnavailableError
from tests.conftest import ROOT
from tests.server import answers

STANDIN = str(ROOT / "tests" / "llama_standin.py")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


def gone(pid: int, timeout: float) -> bool:
    """The process ``pid`` has exited (a zombie waiting for its reaper counts) within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@pytest.fixture
def server():
    server = LlamaServer(sys.executable, [STANDIN], grace=1.0)
    yield server
    server.stop()


ENGINE = f"""
import sys, threading, time
sys.path.insert(0, {str(ROOT)!r})
from src.engine.llamacpp_process import LlamaServer
from src.errors import EngineUnavailableError
server = LlamaServer(sys.executable, [{STANDIN!r}])
starter = threading.Thread(target=server.start)  # a thread that ends once the child is up
starter.start(); starter.join()
print(server.process.pid, server.url, flush=True)
time.sleep(600)
"""


def test_the_child_outlives_its_starting_thread_and_dies_with_a_sigkilled_engine():
    engine = subprocess.Popen([sys.executable, "-c", ENGINE], stdout=subprocess.PIPE, text=True)
    try:
        assert engine.stdout is not None
        pid_text, url = engine.stdout.readline().split()
        child = int(pid_text)
        time.sleep(1.0)  # the thread that forked it is gone: the kernel's "parent" must not be
        assert psutil.Process(child).status() != psutil.STATUS_ZOMBIE and answers(url + "/health")
        engine.send_signal(signal.SIGKILL)
        engine.wait(timeout=10)
        assert gone(child, timeout=5), "the child outlived a SIGKILLed engine"
    finally:
        engine.kill()
        engine.wait()


def test_a_crashed_child_is_restarted_on_the_same_port(server):
    server.start()
    first = server.process
    assert first is not None
    first.kill()
    deadline = time.monotonic() + 30
    while (server.process is first or not answers(server.url + "/health")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.process is not first and server.restarts == 1
    assert answers(server.url + "/health")


def test_nothing_is_restarted_once_stop_has_begun(server):
    server.start()
    first = server.process
    assert first is not None
    first.kill()
    while server.restarts == 0:  # the supervisor saw the crash and is in its back-off
        time.sleep(0.005)
    server.stop()
    time.sleep(6.0)  # past the longest back-off: a restart would have happened by now
    assert server.process is first and server.stopping
    assert not answers(server.url + "/health")


def test_stop_waits_then_kills_a_child_that_ignores_sigterm():
    server = LlamaServer(sys.executable, [STANDIN, "--ignore-sigterm"], grace=1.0)
    server.start()
    process = server.process
    assert process is not None
    server.stop()
    assert process.returncode == -signal.SIGKILL  # SIGTERM was ignored; stop() returned after the kill
    assert not answers(server.url + "/health")


def test_a_start_after_stop_is_refused(server):
    server.stop()
    with pytest.raises(EngineUnavailableError):
        server.start()
    assert server.process is None
