"""llama-server never outlives the engine (issue 22): the app on the llama.cpp backend is
SIGKILLed (what the OOM killer does), or stopped with SIGTERM in the middle of 16 streams;
either way no llama-server is left."""

from __future__ import annotations

import os
import signal
import threading

import httpx
import psutil
import pytest

from src.engine.llamacpp_backend import server_path
from tests.integration.test_llamacpp_process import gone
from tests.server import RemoteServer

pytestmark = pytest.mark.skipif(server_path() is None, reason="llama-server is not built (scripts/install_llamacpp.sh)")


def llama_servers(server: RemoteServer) -> list[int]:
    """Pids of the llama-server processes under the app's engine process."""
    assert server.proc is not None
    return [p.pid for p in psutil.Process(server.proc.pid).children(recursive=True)
            if p.name().startswith("llama-server")]


def test_a_sigkilled_engine_leaves_no_llama_server(tmp_path):
    with RemoteServer(tmp_path, "--llm_backend=llamacpp") as server:
        assert server.proc is not None
        children = llama_servers(server)
        assert len(children) == 1
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
        assert all(gone(pid, timeout=5) for pid in children), "llama-server outlived the engine"


def test_stopping_the_app_in_the_middle_of_16_streams_leaves_no_llama_server(tmp_path):
    with RemoteServer(tmp_path, "--llm_backend=llamacpp", "--openai_workers=2",
                      "--shutdown_timeout=1") as server:
        assert server.proc is not None
        children = llama_servers(server)
        assert len(children) == 1
        body = {"model": server.model(), "messages": [{"role": "user", "content": "Write a long story."}],
                "max_tokens": 2000, "min_tokens": 1500, "temperature": 1.0, "stream": True}  # no early end
        started = threading.Semaphore(0)

        def stream() -> None:
            try:
                with httpx.stream("POST", server.base_url + "/chat/completions", json=body, timeout=120) as r:
                    first = True
                    for line in r.iter_lines():  # read on to the end: the stream stays in flight
                        if first and line.startswith("data: {"):
                            started.release()
                            first = False
            except httpx.HTTPError:  # cut by the stop: expected
                pass

        threads = [threading.Thread(target=stream, daemon=True) for _ in range(16)]
        for thread in threads:
            thread.start()
        for _ in threads:  # every stream has its first token: 16 generations in flight
            assert started.acquire(timeout=120)
        assert server.health()["active_requests"] >= 16
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=60) == 0
        assert all(gone(pid, timeout=0) for pid in children), "llama-server outlived the app's stop"
        for thread in threads:
            thread.join(timeout=30)
