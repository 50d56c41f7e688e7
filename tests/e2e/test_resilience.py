"""Rate limits counted once across 2 workers, a draining SIGTERM, and the engine's death."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import httpx
import psutil
import pytest

from tests.e2e.test_operations import pinned_clients
from tests.server import RemoteServer

DEFAULT_KEY, VIP_KEY = "sk-rate-default", "sk-rate-vip"


def envelope(response: httpx.Response) -> dict:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return dict(error)


# --- rate limits --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rate")
    keys = workdir / "keys.json"
    keys.write_text(json.dumps([DEFAULT_KEY, {"key": VIP_KEY, "rate_limit": "5/minute"}]))
    with RemoteServer(workdir, "--openai_workers=2", "--enforce_h2ogpt_api_key=True",
                      f"--h2ogpt_api_keys={keys}", "--api_rate_limit=3/minute") as srv:
        yield srv


def test_rate_limit_is_enforced_once_across_workers(limited):
    clients = list(pinned_clients(limited).values())  # one connection on each worker
    statuses = []
    for i in range(6):
        response = clients[i % 2].get("/v1/models", headers={"Authorization": f"Bearer {DEFAULT_KEY}"})
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429, 429, 429]  # 3 in all, not 3 per worker
    error = envelope(response)
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # Exempt paths, and a bad key is a 401 (not a 429).
    assert all(clients[0].get("/health").status_code == 200 for _ in range(5))
    assert all(clients[1].get("/metrics").status_code == 200 for _ in range(5))
    assert clients[0].get("/v1/models", headers={"Authorization": "Bearer nope"}).status_code == 401
    for client in clients:
        client.close()


def test_a_key_may_carry_its_own_limit(limited):
    headers = {"Authorization": f"Bearer {VIP_KEY}"}
    statuses = [httpx.get(limited.base_url + "/models", headers=headers).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2


# --- shutdown and faults ------------------------------------------------------------------
def test_sigterm_drains_streams_refuses_new_requests_and_exits_zero(tmp_path):
    server = RemoteServer(tmp_path, "--openai_workers=2", "--shutdown_timeout=120").start()
    assert server.proc is not None
    stream_result: dict = {}

    def stream() -> None:
        body = {"messages": [{"role": "user", "content": "Write a long story."}], "max_tokens": 150,
                "temperature": 0, "stream": True}
        with httpx.stream("POST", server.base_url + "/chat/completions", json=body, timeout=150) as r:
            lines = [line for line in r.iter_lines() if line.startswith("data: ")]
        stream_result.update(status=r.status_code, lines=lines, ended=time.monotonic())

    thread = threading.Thread(target=stream)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.health()["active_requests"] and time.monotonic() < deadline:
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGTERM)
    refused, refused_at = None, 0.0
    deadline = time.monotonic() + 10
    while refused is None and time.monotonic() < deadline:
        try:
            response = httpx.get(server.base_url + "/models", timeout=10)
        except httpx.TransportError:  # a worker with nothing in flight exits at once: a reset
            time.sleep(0.05)
            continue
        assert response.status_code in (200, 503)
        if response.status_code == 503:
            refused, refused_at = envelope(response), time.monotonic()
        time.sleep(0.05)
    assert refused is not None and refused["code"] == "shutting_down"
    thread.join(timeout=150)
    assert stream_result["status"] == 200 and stream_result["lines"][-1] == "data: [DONE]"
    last = json.loads(stream_result["lines"][-2].removeprefix("data: "))
    assert last["choices"][0]["finish_reason"] in ("stop", "length")  # finished, not cut
    assert stream_result["ended"] > refused_at  # it was in flight while new requests got 503
    assert server.proc.wait(timeout=60) == 0


def test_engine_death_gives_503s_at_once_and_the_workers_exit(tmp_path):
    server = RemoteServer(tmp_path, "--openai_workers=2").start()
    assert server.proc is not None
    workers = server.worker_pids()
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)
    assert server.proc.returncode != 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            response = httpx.post(server.base_url + "/chat/completions", timeout=5,
                                  json={"messages": [{"role": "user", "content": "hi"}]})
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
            break  # the workers are gone (nothing listens), or one exited as it took this connection
        assert time.monotonic() - start < 2
        assert response.status_code == 503 and envelope(response)["code"] == "engine_unavailable"
    gone = psutil.wait_procs([psutil.Process(p) for p in workers if psutil.pid_exists(p)], timeout=5)
    assert not gone[1], "workers outlived the engine"
