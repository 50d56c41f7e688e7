"""A remote engine receives what the client sent, and the client gets the engine's answer
unchanged: the app runs with ``--inference_server=openai_chat:URL`` on a recording
OpenAI-compatible server (tests/recording_server.py), driven by the openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.recording_server import MODEL, RecordingServer, Reply
from tests.server import RemoteServer

IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CALL = {"id": "call_earlier_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
CONVERSATION = [
    {"role": "system", "content": "Rule one: be brief."},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi."},
    {"role": "system", "content": "Rule two: answer in English."},
    {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                 {"type": "image_url", "image_url": {"url": IMAGE}}]},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "content": "Oslo: 4 C, rain", "tool_call_id": "call_earlier_1"},
    {"role": "user", "content": "And in Paris?"},
]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.fixture(scope="module")
def remote() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture(scope="module")
def front(remote: RecordingServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    workdir = tmp_path_factory.mktemp("front")
    with RemoteServer(workdir, f"--inference_server=openai_chat:{remote.base_url}",
                      f"--db_root={workdir / 'db'}") as server:
        yield server


def last_body(remote: RecordingServer) -> dict:
    with remote.lock:
        return remote.bodies[-1]


def test_the_conversation_reaches_the_remote_as_sent(front: RemoteServer, remote: RecordingServer):
    remote.script.append(Reply(text="It is sunny in Paris."))
    answer = front.client().chat.completions.create(
        model=MODEL, messages=CONVERSATION, tools=[WEATHER], tool_choice="auto", seed=1234,
        stop=["END", "STOP"], max_tokens=40, temperature=0.3)
    body = last_body(remote)
    assert body["messages"] == CONVERSATION  # both system messages in place, the image in its turn, ids kept
    assert body["tools"] == [WEATHER] and body["tool_choice"] == "auto"
    assert body["seed"] == 1234 and body["stop"] == ["END", "STOP"] and body["temperature"] == 0.3
    assert answer.choices[0].message.content == "It is sunny in Paris. "  # the engine's text, unchanged


def test_response_format_reaches_the_remote_as_sent(front: RemoteServer, remote: RecordingServer):
    remote.script.append(Reply(text='{"city": "Paris"}'))
    fmt = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA, "strict": True}}
    front.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Where?"}],
                                           response_format=fmt, max_tokens=20)
    assert last_body(remote)["response_format"] == fmt


@pytest.mark.parametrize("stream", [False, True])
def test_the_engine_tool_call_ids_come_back_unchanged(front: RemoteServer, remote: RecordingServer, stream: bool):
    remote.script.append(Reply(tool_calls=[("call_remote_42", "get_weather", '{"city": "Paris"}'),
                                           ("call_remote_43", "get_weather", '{"city": "Rome"}')]))
    kwargs = {"model": MODEL, "messages": [{"role": "user", "content": "Weather in Paris and Rome?"}],
              "tools": [WEATHER], "max_tokens": 40}
    client = front.client()
    if not stream:
        choice = client.chat.completions.create(**kwargs).choices[0]
        calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or []]
        reason = choice.finish_reason
    else:
        pieces: dict[int, dict] = {}
        reason = None
        for chunk in client.chat.completions.create(stream=True, **kwargs):
            if not chunk.choices:
                continue
            for delta in chunk.choices[0].delta.tool_calls or []:
                call = pieces.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
                call["id"] = call["id"] or delta.id
                call["name"] = call["name"] or (delta.function.name if delta.function else None)
                call["arguments"] += (delta.function.arguments or "") if delta.function else ""
            reason = chunk.choices[0].finish_reason or reason
        calls = [(c["id"], c["name"], json.loads(c["arguments"])) for _, c in sorted(pieces.items())]
    assert calls == [("call_remote_42", "get_weather", {"city": "Paris"}),
                     ("call_remote_43", "get_weather", {"city": "Rome"})]
    assert reason == "tool_calls"


def test_images_go_to_a_remote_not_declared_text_only(front: RemoteServer, remote: RecordingServer):
    remote.script.append(Reply(text="A single pixel."))
    parts = [{"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}}, {"type": "text", "text": "What?"}]
    front.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": parts}], max_tokens=8)
    assert last_body(remote)["messages"] == [{"role": "user", "content": parts}]


def test_tokenize_then_detokenize_round_trips_on_the_remote(front: RemoteServer):
    text = "Grüße, Paris!"
    tokens = httpx.post(front.url + "/tokenize", json={"model": MODEL, "prompt": text}).json()["tokens"]
    assert tokens == list(text.encode())  # the remote's own tokenizer answered
    back = httpx.post(front.url + "/detokenize", json={"model": MODEL, "tokens": tokens})
    assert back.status_code == 200 and back.json()["prompt"] == text
    refused = httpx.post(front.url + "/detokenize", json={"model": MODEL, "tokens": [999]})
    assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"


def test_a_text_only_remote_refuses_images_before_asking(remote: RecordingServer,
                                                         tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("textonly")
    lock = json.dumps([{"inference_server": f"openai_chat:{remote.base_url}", "base_model": MODEL, "vision": False}])
    before = len(remote.bodies)
    with RemoteServer(workdir, f"--model_lock={lock}", f"--db_root={workdir / 'db'}") as server:
        with pytest.raises(openai.BadRequestError) as refused:
            server.client().chat.completions.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": IMAGE}}, {"type": "text", "text": "What?"}]}])
    assert "text only" in str(refused.value)
    assert len(remote.bodies) == before  # the remote was never asked


def test_logits_of_a_remote_are_its_top_logprobs_of_one_token(front: RemoteServer, remote: RecordingServer):
    url = front.base_url + "/internal/logits"
    raw = httpx.post(url, json={"prompt": "Who is best, Asuka or Rei? Answer:"}, timeout=60).json()
    body = last_body(remote)
    assert body["prompt"] == "Who is best, Asuka or Rei? Answer:" and body["max_tokens"] == 1
    assert body["logprobs"] == 20 and len(raw) == 20  # top_logits 50, capped at OpenAI's and vLLM's 20
    assert list(raw) == [f" t{i}" for i in range(20)] and raw[" t0"] == pytest.approx(0.5)
    sampled = httpx.post(url, json={"prompt": "x", "use_samplers": True, "top_k": 3}, timeout=60).json()
    assert sampled == pytest.approx({" t0": 4 / 7, " t1": 2 / 7, " t2": 1 / 7})  # renormalized
