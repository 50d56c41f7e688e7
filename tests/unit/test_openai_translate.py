"""OpenAI request -> EvalParams translation, and response shapes, over a scripted engine."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from openai_server import translate
from openai_server.app import create_app
from openai_server.errors import InvalidRequestError
from openai_server.protocol import (
    H2OGPT_FIELDS,
    ChatCompletionRequest,
    CompletionRequest,
    H2oGPTParams,
    wire,
)
from src.conversation import backend_message, compose
from src.engine.types import Capabilities
from src.errors import EngineUnavailableError, QueueTimeoutError
from src.params import EvalParams
from src.settings import build_settings
from tests.unit.fake_engine import MODEL, FakeEngine

HELLO = [{"role": "user", "content": "hi"}]
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def chat_request(**body):
    return ChatCompletionRequest.model_validate({"messages": HELLO, **body})


# --- translation ---------------------------------------------------------------------------
def test_defaults_follow_the_h2ogpt_docs():
    params = translate.chat_params(chat_request())[0]
    assert params.max_new_tokens == 256 and params.temperature == 0.3 and params.top_p == 1.0
    assert params.seed == 0 and params.instruction == "hi" and params.system_prompt is None


def sent(messages):
    """The contract messages of a chat request, as OpenAI-shaped dicts (what a backend reads)."""
    (request, *_) = translate.chat_requests(chat_request(messages=messages))
    return [backend_message(m) for m in request.messages or []]


def test_messages_keep_their_shape_and_the_last_question_is_the_instruction():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "system", "content": "Rule two."},
        {"role": "user", "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}]},
    ]
    params = translate.chat_params(chat_request(messages=messages))[0]
    assert "system_prompt" not in params.model_fields_set and params.chat_conversation == []
    assert params.instruction == "three\nfour"
    assert sent(messages) == messages  # both system messages in place, the parts as sent


def test_tool_turns_keep_their_ids():
    call = {"id": "call_remote_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "content": "42", "tool_call_id": "call_remote_1"}]
    assert sent(messages) == messages
    (params,) = translate.chat_params(chat_request(messages=messages))
    assert params.instruction == ""  # a tool result ends it: the model answers it


def test_openai_fields_map_onto_evaluate():
    params = translate.chat_params(chat_request(
        max_tokens=10, max_completion_tokens=20, temperature=0, stop="END", seed=5,
        presence_penalty=0.5, frequency_penalty=0.25, logit_bias={"42": -100}, logprobs=True,
        top_logprobs=3, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}},
    ))[0]
    assert params.max_new_tokens == 20  # max_completion_tokens wins
    assert params.temperature == 0 and params.do_sample is False
    assert params.stop == ["END"] and params.seed == 5
    assert params.presence_penalty == 0.5 and params.frequency_penalty == 0.25
    assert params.logit_bias == {42: -100.0}
    assert params.logprobs is True and params.top_logprobs == 3
    assert params.response_format == "json_object" and params.guided_json == SCHEMA


def test_json_schema_without_a_schema_is_a_400_naming_the_param():
    with pytest.raises(InvalidRequestError) as info:
        translate.chat_params(chat_request(response_format={"type": "json_schema", "json_schema": {"name": "x"}}))
    assert info.value.param == "response_format.json_schema.schema"


def test_guided_fields_pass_through_extra_body():
    chat = translate.chat_params(chat_request(guided_choice=["yes", "no"]))[0]
    assert chat.guided_choice == ["yes", "no"]
    text = translate.completion_params(CompletionRequest(prompt="p", guided_regex="[0-9]+"))[0]
    assert text.guided_regex == "[0-9]+"


def test_n_choices_get_consecutive_seeds():
    choices = translate.chat_params(chat_request(n=3, seed=10))
    assert [c.seed for c in choices] == [10, 11, 12]
    assert [c.seed for c in translate.chat_params(chat_request(n=2))] == [0, 0]


def test_h2ogpt_fields_are_generated_from_evalparams():
    expected = set(EvalParams.model_fields) - {
        "temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty",
        "logit_bias", "logprobs", "top_logprobs", "response_format", "stream_output",
        "tools", "tool_choice", "parallel_tool_calls",
    }
    assert set(H2OGPT_FIELDS) == expected
    assert set(H2oGPTParams.model_fields) == expected
    for name in ("langchain_mode", "langchain_action", "top_k_docs", "system_prompt",
                 "chat_conversation", "text_context_list", "top_k", "repetition_penalty",
                 "min_new_tokens"):
        assert name in ChatCompletionRequest.model_fields and name in CompletionRequest.model_fields


def test_explicit_h2ogpt_fields_are_applied_to_the_conversation_in_one_place():
    messages = [{"role": "system", "content": "from messages"}, {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    (request,) = translate.chat_requests(chat_request(
        messages=messages, system_prompt="explicit", chat_conversation=[["x", "y"]],
        top_k=3, max_new_tokens=7, langchain_mode="LLM",
    ))
    params = request.params.with_defaults(build_settings({}))
    assert params.top_k == 3 and params.max_new_tokens == 7 and params.langchain_mode == "LLM"
    assert compose(params, request.messages, Capabilities()) == [
        {"role": "system", "content": "explicit"}, {"role": "system", "content": "from messages"},
        {"role": "user", "content": "x"}, {"role": "assistant", "content": "y"},
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]


def test_the_default_system_prompt_only_where_the_client_sent_none():
    settings = build_settings({"system_prompt": "Server default."})
    (with_own,) = translate.chat_requests(chat_request(messages=[{"role": "system", "content": "mine"},
                                                                 {"role": "user", "content": "q"}]))
    (without,) = translate.chat_requests(chat_request(messages=[{"role": "user", "content": "q"}]))
    own = compose(with_own.params.with_defaults(settings), with_own.messages, Capabilities())
    none = compose(without.params.with_defaults(settings), without.messages, Capabilities())
    assert [m["content"] for m in own] == ["mine", "q"]
    assert [m["content"] for m in none] == ["Server default.", "q"]


def test_unknown_fields_are_ignored_and_logged(caplog):
    with caplog.at_level("WARNING"):
        request = chat_request(frobnicate=1)
    assert "frobnicate" in caplog.text
    assert "frobnicate" not in translate.chat_params(request)[0].model_dump()


def test_a_final_assistant_message_is_continued_and_system_only_is_answered():
    (cont,) = translate.chat_params(chat_request(messages=[
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]))
    assert cont.instruction == ""
    assert sent([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])[-1]["role"] == "assistant"
    (system,) = translate.chat_params(chat_request(messages=[{"role": "system", "content": "only"}]))
    assert system.instruction == "" and system.chat_conversation == []


def test_image_url_parts_stay_in_their_turn():
    messages = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                                     {"type": "text", "text": "first"}]},
        {"role": "assistant", "content": "a red square"},
        {"role": "user", "content": [{"type": "text", "text": "and this?"},
                                     {"type": "image_url", "image_url": {"url": "https://x.test/b.png",
                                                                         "detail": "low"}}]},
    ]
    (params,) = translate.chat_params(chat_request(messages=messages))
    assert params.images == [] and params.instruction == "and this?"
    assert sent(messages) == messages


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": [{"type": "image_url", "image_url": {"detail": "low"}}]}],
    [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]}],
])
def test_bad_messages_are_invalid_requests(messages):
    with pytest.raises(InvalidRequestError):
        translate.chat_requests(chat_request(messages=messages))


def test_bad_logit_bias_and_bad_h2ogpt_values_are_invalid_requests():
    with pytest.raises(InvalidRequestError):
        translate.chat_params(chat_request(logit_bias={"token": 1}))
    with pytest.raises(InvalidRequestError) as info:
        translate.chat_params(chat_request(logit_bias={"1": 500}))
    assert info.value.param == "logit_bias"
    with pytest.raises(InvalidRequestError):
        translate.chat_params(chat_request(min_new_tokens=50, max_tokens=10))


def test_completion_prompts_and_choices():
    request = CompletionRequest.model_validate({"prompt": ["a b", "c"], "n": 2, "max_tokens": 3,
                                                "logprobs": 2})
    params = translate.completion_params(request)
    assert [p.instruction for p in params] == ["a b", "a b", "c", "c"]
    assert all(p.max_new_tokens == 3 and p.top_logprobs == 2 and p.logprobs for p in params)


# --- responses over the fake engine ---------------------------------------------------------
@pytest.fixture()
def engine():
    return FakeEngine()


@pytest.fixture()
def api(engine):
    return TestClient(create_app(build_settings({}), engine))


def events(response) -> list:
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_chat_response_shape(api, engine):
    body = api.post("/v1/chat/completions", json={"messages": HELLO, "n": 2}).json()
    assert body["object"] == "chat.completion" and body["model"] == MODEL
    assert [c["message"]["content"] for c in body["choices"]] == ["Hello there friend"] * 2
    assert body["usage"] == {"prompt_tokens": 1, "completion_tokens": 6, "total_tokens": 7,
                             "prompt_tokens_details": {"cached_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 0}}
    assert body["system_fingerprint"].startswith("fp_")
    assert "sources" not in body["choices"][0]
    assert all(call["stream_output"] is False for call in engine.calls)


def test_sources_go_in_the_choice_extension_field(api, engine):
    engine.sources = [{"source": "a.txt", "score": 0.9, "content": "x"}]
    body = api.post("/v1/chat/completions", json={"messages": HELLO}).json()
    assert body["choices"][0]["sources"] == engine.sources and "sources" not in body["usage"]
    chunks = events(api.post("/v1/chat/completions", json={"messages": HELLO, "stream": True}))
    assert chunks[-1]["choices"][0]["sources"] == engine.sources


def test_chat_stream_shape(api):
    chunks = events(api.post("/v1/chat/completions", json={
        "messages": HELLO, "stream": True, "n": 2, "stream_options": {"include_usage": True},
    }))
    assert len({c["id"] for c in chunks}) == 1
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks if c["choices"] and c["choices"][0]["index"] == index]
        assert mine[0]["delta"] == {"role": "assistant", "content": ""}
        assert "".join(c["delta"].get("content", "") for c in mine) == "Hello there friend"
        assert [c["finish_reason"] for c in mine][-1] == "stop"
        assert all(c["finish_reason"] is None for c in mine[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 6


def test_chat_logprobs_shape(api):
    body = api.post("/v1/chat/completions", json={"messages": HELLO, "logprobs": True,
                                                   "top_logprobs": 1}).json()
    content = body["choices"][0]["logprobs"]["content"]
    assert [t["token"] for t in content] == ["Hello", " there", " friend"]
    assert content[0]["bytes"] == list(b"Hello")


def test_completions_echo_and_stream(api):
    body = api.post("/v1/completions", json={"prompt": ["p1", "p2"], "echo": True}).json()
    assert body["object"] == "text_completion"
    assert [c["text"] for c in body["choices"]] == ["p1Hello there friend", "p2Hello there friend"]
    assert body["usage"]["prompt_tokens"] == 2
    chunks = events(api.post("/v1/completions", json={"prompt": "p", "stream": True, "max_tokens": 2}))
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello there"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all(c["object"] == "text_completion" for c in chunks)


def test_unknown_model_is_404_and_known_model_works(api):
    response = api.post("/v1/chat/completions", json={"messages": HELLO, "model": "gpt-4"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    assert api.post("/v1/chat/completions", json={"messages": HELLO, "model": MODEL}).status_code == 200
    assert api.get("/v1/models/nope").status_code == 404
    assert api.get(f"/v1/models/{MODEL}").json()["id"] == MODEL


@pytest.mark.parametrize("stream", [False, True])
def test_every_front_takes_the_model_from_the_engines_first_event_not_a_model_list(api, engine, stream):
    """One engine round trip per answer: the engine names the model that answers."""
    asks = [("/v1/chat/completions", {"messages": HELLO}), ("/v1/completions", {"prompt": "p"}),
            ("/v1/responses", {"input": "Hi", "store": False}),
            ("/v1/messages", {"messages": HELLO, "max_tokens": 8})]
    for path, body in asks:
        for named in ({}, {"model": MODEL}):
            response = api.post(path, json={**body, **named, "stream": stream})
            assert response.status_code == 200, (path, response.text)
            text = response.text if stream else json.dumps(response.json())
            assert f'"model": "{MODEL}"' in text.replace('":"', '": "'), (path, text[:300])
    assert engine.model_lists == 0 and len(engine.requests) == 2 * len(asks)
    assert api.post("/v1/messages", json={"messages": HELLO, "max_tokens": 8, "model": "gpt-4",
                                          "stream": stream}).status_code == 404


def test_engine_errors_map_to_statuses(api, engine):
    engine.fail_with = QueueTimeoutError("waited")
    response = api.post("/v1/chat/completions", json={"messages": HELLO})
    assert response.status_code == 503 and response.json()["error"]["code"] == "queue_timeout"
    response = api.post("/v1/chat/completions", json={"messages": HELLO, "stream": True})
    assert response.status_code == 503  # before the first chunk: a real status
    gone = FakeEngine()
    gone.fail_with = EngineUnavailableError("gone")
    fresh = TestClient(create_app(build_settings({}), gone))
    assert fresh.get("/health").status_code == 503
    assert fresh.get("/v1/models").json()["error"]["code"] == "engine_unavailable"
    assert fresh.post("/v1/chat/completions", json={"messages": HELLO}).status_code == 503


def test_error_after_streaming_began_is_an_error_chunk(api, engine):
    engine.fail_with, engine.fail_after = QueueTimeoutError("late"), 2
    response = api.post("/v1/chat/completions", json={"messages": HELLO, "stream": True})
    assert response.status_code == 200
    chunks = events(response)
    assert chunks[-1]["error"]["type"] == "server_error"
    assert "Hello" in "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])


@pytest.mark.parametrize("kind", ["chat", "completion"])
def test_a_stream_starts_when_the_engine_starts_not_at_the_first_token(kind):
    """The response (status, headers, a chat's role chunk) is ready while the prompt is read."""
    import asyncio

    from openai_server.serving import CompletionService

    async def scenario() -> list[dict]:
        engine = FakeEngine()
        engine.hold = asyncio.Event()  # the engine has started; no token yet
        service = CompletionService(engine)
        if kind == "chat":
            stream = await asyncio.wait_for(service.chat(chat_request(stream=True)), 5)
            first = [await asyncio.wait_for(anext(stream), 5)]
        else:
            request = CompletionRequest.model_validate({"prompt": "p", "stream": True})
            stream = await asyncio.wait_for(service.completion(request), 5)
            first = []
        engine.hold.set()
        rest = [chunk async for chunk in stream]
        return [wire(c) for c in (*first, *rest)]

    chunks = asyncio.run(scenario())
    if kind == "chat":
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    else:
        text = "".join(c["choices"][0]["text"] for c in chunks)
    assert text == "Hello there friend"


def test_repeat_penalty_is_repetition_penalty_and_known_samplers_are_taken_not_logged(caplog):
    request = ChatCompletionRequest.model_validate({
        "messages": HELLO, "repeat_penalty": 1.3, "min_p": 0.1, "typical_p": 0.9, "mirostat": 2,
        "num_ctx": 4096})
    params = translate.chat_params(request)[0]
    assert params.repetition_penalty == 1.3 and params.min_p == 0.1
    assert params.samplers == {"typical_p": 0.9, "mirostat": 2} and isinstance(params.samplers["mirostat"], int)
    assert "num_ctx" in caplog.text and "typical_p" not in caplog.text  # only the unknown one is logged
    with pytest.raises(ValueError, match="not both"):
        ChatCompletionRequest.model_validate({"messages": HELLO, "repeat_penalty": 1.3, "repetition_penalty": 1.1})
    completion = translate.completion_params(CompletionRequest.model_validate(
        {"prompt": "a", "repeat_penalty": 1.2, "top_n_sigma": 1.5}))[0]
    assert completion.repetition_penalty == 1.2 and completion.samplers == {"top_n_sigma": 1.5}


def test_only_a_max_tokens_the_client_set_is_strict():
    def strict(**body):
        return translate.chat_requests(ChatCompletionRequest.model_validate({"messages": HELLO, **body}))[0]

    assert not strict().strict_max_new_tokens and strict().params.max_new_tokens == 256
    assert strict(max_tokens=10).strict_max_new_tokens and strict(max_completion_tokens=10).strict_max_new_tokens
    assert strict(max_new_tokens=10).strict_max_new_tokens  # h2oGPT's name, set explicitly
    assert translate.asked_max_tokens(CompletionRequest.model_validate({"prompt": "a", "max_tokens": 3}))
    assert not translate.asked_max_tokens(CompletionRequest.model_validate({"prompt": "a"}))
