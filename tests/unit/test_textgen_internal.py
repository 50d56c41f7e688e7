"""text-generation-webui's internal API (/v1/internal/*): the sampler arithmetic of
src/engine/next_token.py, the stop registry of src/ipc/stopping.py, and the routes over a
scripted engine (shapes, keys, validation). End to end: tests/e2e/test_textgen_api.py."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from openai_server.app import create_app
from src.contract import LogitsRequest
from src.engine.next_token import apply_samplers, validate
from src.errors import InvalidParamsError
from src.ipc.stopping import RunningAnswers
from src.settings import build_settings
from tests.unit.fake_engine import FakeEngine

DIST = [("a", 0.5), ("b", 0.3), ("c", 0.15), ("d", 0.05)]


def samplers(**fields) -> LogitsRequest:
    return LogitsRequest(prompt="x", use_samplers=True, **fields)


def test_top_k_keeps_k_tokens_renormalized():
    kept = apply_samplers(DIST, samplers(top_k=3))
    assert [t for t, _ in kept] == ["a", "b", "c"] and sum(p for _, p in kept) == pytest.approx(1.0)
    assert kept[0][1] == pytest.approx(0.5 / 0.95)


def test_top_p_keeps_the_smallest_set_reaching_it_and_min_p_drops_the_unlikely():
    assert [t for t, _ in apply_samplers(DIST, samplers(top_p=0.8))] == ["a", "b"]
    assert [t for t, _ in apply_samplers(DIST, samplers(top_p=0.81))] == ["a", "b", "c"]
    assert [t for t, _ in apply_samplers(DIST, samplers(min_p=0.3))] == ["a", "b", "c"]  # 0.15 >= 0.5 * 0.3


def test_temperature_sharpens_and_zero_is_greedy():
    cold = dict(apply_samplers(DIST, samplers(temperature=0.5)))
    assert cold["a"] == pytest.approx(0.25 / (0.25 + 0.09 + 0.0225 + 0.0025))
    assert apply_samplers(DIST, samplers(temperature=0)) == [("a", 1.0)]
    assert dict(apply_samplers(DIST, samplers())) == pytest.approx(dict(DIST))  # all off: unchanged


@pytest.mark.parametrize(("field", "value"), [("top_p", 0.0), ("top_k", -1), ("min_p", 1.5),
                                              ("temperature", -1.0), ("top_logits", 0)])
def test_out_of_range_samplers_name_the_field(field, value):
    with pytest.raises(InvalidParamsError) as info:
        validate(samplers(**{field: value}))
    assert info.value.param == field


def test_stop_sets_only_that_requesters_running_answers():
    running = RunningAnswers()
    left = threading.Event()
    with running.track("alice", left) as a1, running.track("alice", threading.Event()) as a2, \
            running.track("bob", threading.Event()) as b:
        assert running.stop("alice") == 2
        assert a1.is_set() and a2.is_set() and not b.is_set()
    assert running.stop("alice") == 0  # finished answers are no longer tracked
    with running.track("carol", left) as c:
        left.set()  # the client left: the IPC's cancel stops the answer too
        assert c.is_set()


def test_routes_answer_in_textgen_shapes():
    engine = FakeEngine()
    api = TestClient(create_app(build_settings({}), engine))
    encoded = api.post("/v1/internal/encode", json={"text": "one three"}).json()
    assert encoded == {"tokens": [3, 5], "length": 2}
    assert api.post("/v1/internal/token-count", json={"text": "one three"}).json() == {"length": 2}
    assert api.post("/v1/internal/decode", json={"tokens": [1, 2]}).json() == {"text": "x xx"}
    logits = api.post("/v1/internal/logits", json={"prompt": "Hi", "use_samplers": True, "top_k": 3}).json()
    assert logits == {" a": 0.625, " b": 0.25}  # a text that two tokens share adds up
    sent = engine.logits_requests[-1]
    assert sent.use_samplers and sent.top_k == 3 and sent.top_logits == 50 and sent.model == "test/model"
    chat = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]}
    assert api.post("/v1/internal/chat-prompt", json=chat).json() == {"prompt": "<system>S<user>U"}
    assert api.post("/v1/internal/stop-generation", headers={"Authorization": "Bearer k"}).json() == "OK"
    assert len(engine.stopped) == 1 and engine.stopped[0].startswith("api-")


def test_keys_guard_the_internal_routes_but_not_health():
    settings = build_settings({"enforce_h2ogpt_api_key": True, "h2ogpt_api_keys": ["k1"]})
    api = TestClient(create_app(settings, FakeEngine()))
    refused = api.post("/v1/internal/logits", json={"prompt": "Hi"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "missing_api_key"
    assert api.post("/v1/internal/stop-generation").status_code == 401
    assert api.post("/v1/internal/encode", json={"text": "a"}, headers={"Authorization": "Bearer k1"}).status_code == 200
    assert api.get("/v1/internal/health").json() == {"status": "ok"}


def test_bad_bodies_are_400s_naming_the_field():
    api = TestClient(create_app(build_settings({}), FakeEngine()))
    for path, body, field in [("logits", {"prompt": "x", "top_p": 0}, "top_p"), ("logits", {}, "prompt"),
                              ("logits", {"prompt": "x", "top_logits": "many"}, "top_logits"),
                              ("decode", {"tokens": "abc"}, "tokens"), ("encode", {"text": 3}, "text")]:
        response = api.post(f"/v1/internal/{path}", json=body)
        assert response.status_code == 400 and response.json()["error"]["param"] == field, response.text


def test_a_tiny_temperature_is_all_but_greedy_not_nan():
    kept = apply_samplers(DIST, samplers(temperature=1e-300))
    assert kept[0] == ("a", 1.0) and all(p == 0.0 for _, p in kept[1:])
