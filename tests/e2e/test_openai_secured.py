"""API keys, users and the queue limit end to end (generate.py with 2 workers, the real model)."""

from __future__ import annotations

import json
import os
import threading
import time

import httpx
import openai
import pytest

from tests.server import RemoteServer

HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("openai_auth")
    keys = workdir / "keys.json"
    keys.write_text(json.dumps(["key-one", "key-two"]))
    users = workdir / "users.json"
    users.write_text(json.dumps({"alice": {"password": "wonder"}}))
    flags = [
        "--openai_workers=2", "--enforce_h2ogpt_api_key=True", f"--h2ogpt_api_keys={keys}",
        f"--auth={users}", "--auth_access=closed", "--max_queue_time=1", "--concurrency_count=1",
    ]
    with RemoteServer(workdir, *flags) as server:
        server.keys_file = keys  # type: ignore[attr-defined]
        yield server


def chat(server, headers=None, **body):
    body = {"messages": HELLO, "max_tokens": 2, "user": "alice:wonder", **body}
    return httpx.post(server.base_url + "/chat/completions", json=body, headers=headers, timeout=60)


def test_health_and_version_are_open(secured):
    assert httpx.get(secured.url + "/health").status_code == 200
    assert httpx.get(secured.url + "/version").status_code == 200


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer key-one"},
    {"x-api-key": "key-two"},
])
def test_accepted_keys(secured, headers):
    assert chat(secured, headers).status_code == 200
    assert httpx.get(secured.base_url + "/models", headers=headers).status_code == 200


@pytest.mark.parametrize("headers, code", [
    (None, "missing_api_key"),
    ({"Authorization": "Bearer wrong"}, "invalid_api_key"),
    ({"x-api-key": "wrong"}, "invalid_api_key"),
    ({"Authorization": "Basic key-one"}, "missing_api_key"),
])
def test_refused_keys_are_401_envelopes(secured, headers, code):
    for response in (chat(secured, headers), httpx.get(secured.base_url + "/models", headers=headers)):
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["type"] == "authentication_error" and error["code"] == code


def test_sdk_with_key_and_user(secured):
    client = secured.client(api_key="key-one")
    response = client.chat.completions.create(messages=HELLO, max_tokens=2, user="alice:wonder",
                                              model=client.models.list().data[0].id)
    assert response.choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        secured.client(api_key="nope").models.list()


@pytest.mark.parametrize("user", [None, "alice:wrong", "bob:wonder", "alice"])
def test_closed_access_needs_a_known_user(secured, user):
    body = {"user": user} if user else {}
    response = httpx.post(secured.base_url + "/chat/completions", timeout=60,
                          headers={"x-api-key": "key-one"},
                          json={"messages": HELLO, "max_tokens": 2, **body})
    assert response.status_code == 401
    assert response.json()["error"]["param"] == "user"


def test_keys_file_edits_apply_without_restart(secured):
    headers = {"Authorization": "Bearer key-three"}
    assert chat(secured, headers).status_code == 401
    keys = secured.keys_file
    keys.write_text(json.dumps(["key-two", "key-three"]))
    later = time.time() + 1
    os.utime(keys, (later, later))  # a new mtime even on coarse file systems
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # both workers pick it up within their reload period
        if all(chat(secured, headers).status_code == 200 for _ in range(4)):
            break
        time.sleep(0.5)
    else:
        pytest.fail("the new key was not accepted")
    assert chat(secured, {"Authorization": "Bearer key-one"}).status_code == 401


def test_request_queued_past_max_queue_time_is_503(secured):
    headers = {"x-api-key": "key-two"}
    blocker = {"messages": HELLO, "max_tokens": 300, "min_new_tokens": 300, "stream": True,
               "user": "alice:wonder"}
    done = threading.Event()

    def hold() -> None:
        with httpx.stream("POST", secured.base_url + "/chat/completions", json=blocker,
                          headers=headers, timeout=120) as response:
            for _line in response.iter_lines():
                if done.is_set():
                    break

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while secured.health()["active_requests"] < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        for stream in (False, True):
            response = chat(secured, headers, stream=stream)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "queue_timeout"
    finally:
        done.set()
        thread.join(timeout=60)


def test_relative_keys_file_is_read_from_the_launch_directory(tmp_path):
    (tmp_path / "keys.json").write_text(json.dumps(["relative-key"]))
    flags = ["--openai_workers=1", "--enforce_h2ogpt_api_key=True", "--h2ogpt_api_keys=keys.json"]
    with RemoteServer(tmp_path, *flags) as server:  # generate.py runs in tmp_path
        ok = httpx.get(server.base_url + "/models", headers={"x-api-key": "relative-key"})
        assert ok.status_code == 200


def test_workers_exit_when_the_engine_process_is_killed(secured):  # last: it kills the server
    import psutil

    pids = secured.worker_pids()
    assert len(pids) == 2
    secured.proc.kill()  # SIGKILL: no chance to stop the workers itself
    secured.proc.wait(timeout=10)

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + 15
    while not all(gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(gone(p) for p in pids)
