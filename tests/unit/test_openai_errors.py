"""Every error is the OpenAI envelope with the right status; never FastAPI's {"detail": ...}."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from openai_server.app import create_app
from openai_server.errors import from_exception
from src.errors import (
    ContextLengthError,
    DomainError,
    EngineError,
    EngineUnavailableError,
    InvalidParamsError,
    QueueTimeoutError,
    codes,
    from_payload,
    to_payload,
)
from src.settings import build_settings
from tests.unit.fake_engine import FakeEngine

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture()
def api():
    return TestClient(create_app(build_settings({"openai_max_request_bytes": 4096}), FakeEngine()),
                      raise_server_exceptions=False)


def assert_envelope(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.parametrize("body", [
    {"messages": HELLO, "temperature": 5},
    {"messages": HELLO, "temperature": "hot"},
    {"messages": HELLO, "max_tokens": 0},
    {"messages": HELLO, "max_completion_tokens": -1},
    {"messages": HELLO, "n": 0},
    {"messages": HELLO, "top_p": 0},
    {"messages": []},
    {},
    {"messages": HELLO, "stream_options": {"include_usage": True}},
    {"messages": HELLO, "stop": ["a", "b", "c", "d", "e"]},
    {"messages": HELLO, "top_logprobs": 2},
    {"messages": [{"role": "wizard", "content": "x"}]},
    {"messages": HELLO, "langchain_action": "Dance"},
    {"messages": HELLO, "top_k_docs": 0},
])
def test_invalid_chat_requests_are_400(api, body):
    error = assert_envelope(api.post("/v1/chat/completions", json=body), 400)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("body", [{"prompt": []}, {"prompt": "x", "logprobs": 50}, {"prompt": 3}])
def test_invalid_completion_requests_are_400(api, body):
    assert_envelope(api.post("/v1/completions", json=body), 400)


def test_malformed_json_and_non_object_bodies_are_400(api):
    headers = {"content-type": "application/json"}
    error = assert_envelope(api.post("/v1/chat/completions", content=b"{nope", headers=headers), 400)
    assert "JSON" in error["message"]
    assert_envelope(api.post("/v1/chat/completions", content=b"[1, 2]", headers=headers), 400)


def test_not_found_and_wrong_method(api):
    assert_envelope(api.get("/v1/nothing"), 404)
    assert_envelope(api.get("/v1/chat/completions"), 405)


def test_body_limit_with_and_without_content_length(api):
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    error = assert_envelope(api.post("/v1/chat/completions", json=big), 413)
    assert error["code"] == "request_too_large"

    def chunks():
        yield b'{"messages": [{"role": "user", "content": "'
        yield b"x" * 5000
        yield b'"}]}'

    assert_envelope(api.post("/v1/chat/completions", content=chunks(),
                             headers={"content-type": "application/json"}), 413)

    def small():
        yield b'{"messages": [{"role": "user", "content": "hi"}]}'

    assert api.post("/v1/chat/completions", content=small(),
                    headers={"content-type": "application/json"}).status_code == 200


@pytest.mark.parametrize("exc, status, code", [
    (QueueTimeoutError("slow"), 503, "queue_timeout"),
    (EngineUnavailableError("gone"), 503, "engine_unavailable"),
    (ContextLengthError("long"), 400, "context_length_exceeded"),
    (InvalidParamsError("bad"), 400, "invalid_parameter"),
    (EngineError("boom"), 500, "engine_error"),
    (RuntimeError("secret internals"), 500, None),
    (from_payload(to_payload(ValueError("bad value"))), 400, "invalid_parameter"),
    (from_payload(to_payload(KeyError("secret internals"))), 500, "internal_error"),
])
def test_domain_errors_map_to_statuses(exc, status, code):
    error = from_exception(exc)
    assert error.status == status and error.code == code
    if status == 500:
        assert "secret" not in error.message


#: The status each stable code must have: a changed status is a changed contract.
EXPECTED_STATUS = {
    "internal_error": 500, "invalid_parameter": 400, "unsupported_feature": 400, "unsupported_parameter": 400,
    "model_not_found": 404, "engine_error": 500, "context_length_exceeded": 400,
    "queue_timeout": 503, "engine_unavailable": 503, "documents_error": 400,
    "collection_not_found": 404, "collection_exists": 409, "invalid_collection_name": 400,
    "upload_not_allowed": 403, "documents_disabled": 400, "embedding_model_mismatch": 409,
    "vector_store_unavailable": 503,
    "feature_disabled": 501, "feature_off_enable_stt": 501, "feature_off_enable_tts": 501,
    "feature_off_visible_image_models": 501, "audio_invalid": 400, "unsupported_format": 400,
    "upload_too_large": 413, "voice_not_found": 400, "remote_unavailable": 503,
    "remote_timeout": 504, "remote_rejected": 400, "model_not_loaded": 503, "model_load_failed": 400,
}


@pytest.mark.parametrize("code", sorted(codes()))
def test_every_domain_code_has_its_status_across_the_ipc(code):
    """Each code survives the IPC payload round trip and maps to its documented status."""
    cls = codes()[code]
    crossed = from_payload(to_payload(cls("a message for users", param="p")))
    assert type(crossed) is cls and crossed.code == code and crossed.param == "p"
    error = from_exception(crossed)
    assert error.status == EXPECTED_STATUS[code]
    assert error.code == code
    if error.status != 500:
        assert error.message == "a message for users" and error.param == "p"
    else:  # a bug or an engine failure: internals stay in the log
        assert "a message for users" not in error.message


def test_every_code_is_listed_here():
    assert set(codes()) == set(EXPECTED_STATUS)
    assert issubclass(InvalidParamsError, DomainError)


@pytest.mark.parametrize("path, body, param", [
    ("/tokenize", {"prompt": 5}, "prompt"),
    ("/tokenize", {"messages": []}, "messages"),  # the chat member the client meant, not prompt
    ("/tokenize", {}, "prompt"),
    ("/detokenize", {"tokens": ["a"]}, "tokens.0"),
    ("/v1/completions", {"prompt": {"a": 1}}, "prompt"),
    ("/v1/embeddings", {"input": [[1, "a"]]}, "input.0.1"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
     "messages.0.content.0.image_url"),
    ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
])
def test_validation_errors_name_the_field_as_the_client_wrote_it(api, path, body, param):
    """Not pydantic's union and validator tags (function-after[_log_unknown(), ...].prompt)."""
    error = assert_envelope(api.post(path, json=body), 400)
    assert error["param"] == param
    assert error["message"].startswith(param + ": ")
    assert "function-" not in error["message"] and "Request" not in error["message"].split(":")[0]
