"""API keys (list and JSON file), key headers, and the closed-access user check."""

from __future__ import annotations

import json
import os
import time

import pytest
from fastapi.testclient import TestClient

from openai_server.app import create_app
from openai_server.auth import Authenticator, request_key
from openai_server.errors import AuthenticationError
from src.apikeys import ApiKeys
from src.settings import build_settings
from tests.unit.fake_engine import FakeEngine

HELLO = {"messages": [{"role": "user", "content": "hi"}]}


def test_keys_from_a_list():
    keys = ApiKeys(["a", "b"])
    assert keys.check("a") and keys.check("b")
    assert not keys.check("c") and not keys.check("") and not keys.check(None)


def test_keys_file_is_reloaded_by_mtime_not_per_request(tmp_path, monkeypatch):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(["one"]))
    keys = ApiKeys(str(path), reload_seconds=3600)
    reads = []
    watched = keys._file
    assert watched is not None
    real_load = watched._load
    monkeypatch.setattr(watched, "_load", lambda: (reads.append(1), real_load()))
    for _ in range(50):
        assert keys.check("one")
    assert reads == []  # within the reload period the file is not even stat'ed again
    path.write_text(json.dumps(["two"]))
    later = time.time() + 5
    os.utime(path, (later, later))
    keys.reload_seconds = 0
    assert keys.check("two") and not keys.check("one")
    assert len(reads) == 1


def test_bad_keys_file_keeps_previous_keys(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(["one"]))
    keys = ApiKeys(str(path), reload_seconds=0)
    path.write_text("{not json")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert keys.check("one")


@pytest.mark.parametrize("headers, key", [
    ({"authorization": "Bearer k"}, "k"),
    ({"authorization": "bearer  k "}, "k"),
    ({"x-api-key": "k"}, "k"),
    ({"authorization": "Basic k"}, None),
    ({}, None),
])
def test_request_key(headers, key):
    assert request_key(headers) == key


def test_enforced_keys_on_v1_only():
    settings = build_settings({"enforce_h2ogpt_api_key": True, "h2ogpt_api_keys": ["k1"]})
    api = TestClient(create_app(settings, FakeEngine()))
    assert api.get("/health").status_code == 200 and api.get("/version").status_code == 200
    response = api.get("/v1/models")
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
    assert response.headers["www-authenticate"] == "Bearer"
    assert api.get("/v1/models", headers={"Authorization": "Bearer k1"}).status_code == 200
    assert api.get("/v1/models", headers={"x-api-key": "k1"}).status_code == 200
    # the key is checked before the body is read: a bad body without a key is still 401
    assert api.post("/v1/chat/completions", content=b"{oops").status_code == 401


def test_without_enforcement_any_key_works():
    api = TestClient(create_app(build_settings({}), FakeEngine()))
    assert api.get("/v1/models", headers={"Authorization": "Bearer EMPTY"}).status_code == 200
    assert api.get("/v1/models").status_code == 200


def test_closed_access_checks_the_user_field():
    settings = build_settings({"auth": [("alice", "pw")], "auth_access": "closed"})
    auth = Authenticator(settings)
    auth.check_user("alice:pw")
    for bad in (None, "alice", "alice:no", "bob:pw"):
        with pytest.raises(AuthenticationError):
            auth.check_user(bad)
    api = TestClient(create_app(settings, FakeEngine()))
    assert api.post("/v1/chat/completions", json={**HELLO, "user": "alice:pw"}).status_code == 200
    response = api.post("/v1/chat/completions", json={**HELLO, "user": "alice:no"})
    assert response.status_code == 401 and response.json()["error"]["param"] == "user"


def test_open_access_does_not_check_users():
    settings = build_settings({"auth": [("alice", "pw")], "auth_access": "open"})
    Authenticator(settings).check_user(None)
