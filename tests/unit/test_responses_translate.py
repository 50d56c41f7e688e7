"""The Responses and Messages APIs as translators over chat, on a scripted engine.

The official SDKs talk to the app in process (httpx over the ASGI app); what the engine
receives (the typed conversation) and what the SDK parses (items, events) are checked.
The same properties are proven on the real model in tests/e2e/test_responses_api.py.
"""

from __future__ import annotations

import anthropic
import openai
import pytest
from fastapi.testclient import TestClient

from openai_server.app import create_app
from src.errors import ContextLengthError, QueueTimeoutError
from src.settings import build_settings
from tests.unit.fake_engine import MODEL, FakeEngine


@pytest.fixture
def engine():
    return FakeEngine("Hello there friend")


@pytest.fixture
def http(engine, tmp_path):
    return TestClient(create_app(build_settings({"db_root": str(tmp_path)}), engine))


def turns(engine):
    """(role, text) of each message of the conversation the engine was given."""
    return [(m.role, m.text()) for m in engine.requests[-1].messages]


def sdk(http, key="k1"):
    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=http, max_retries=0)


def claude(http, key="k1"):
    return anthropic.Anthropic(base_url="http://testserver", api_key=key, http_client=http, max_retries=0)


def test_a_string_input_is_one_user_turn_and_instructions_the_system_prompt(http, engine):
    response = sdk(http).responses.create(model=MODEL, input="Hi there", instructions="Be brief.",
                                          max_output_tokens=20, temperature=0)
    assert response.status == "completed" and response.output_text == "Hello there friend"
    assert response.output[0].type == "message" and response.output[0].content[0].type == "output_text"
    assert response.usage.output_tokens == 3 and response.usage.total_tokens == response.usage.input_tokens + 3
    sent = engine.calls[-1]
    assert turns(engine) == [("system", "Be brief."), ("user", "Hi there")]
    assert sent["max_new_tokens"] == 20 and sent["do_sample"] is False


def test_max_output_tokens_reached_is_incomplete_with_the_reason(http):
    response = sdk(http).responses.create(model=MODEL, input="Hi", max_output_tokens=2)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


def test_stream_events_come_in_order_with_sequence_numbers(http):
    with sdk(http).responses.stream(model=MODEL, input="Hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello there friend"
    assert final.output_text == "Hello there friend"


def test_previous_response_id_rebuilds_the_conversation_and_is_per_key(http, engine):
    client = sdk(http)
    first = client.responses.create(model=MODEL, input="My name is Ada.")
    client.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id)
    assert turns(engine) == [("user", "My name is Ada."), ("assistant", "Hello there friend"),
                             ("user", "What is my name?")]
    assert client.responses.retrieve(first.id).output_text == "Hello there friend"
    items = client.responses.input_items.list(first.id)
    assert [i.type for i in items.data] == ["message"] and items.data[0].content[0].text == "My name is Ada."
    with pytest.raises(openai.NotFoundError):
        sdk(http, "k2").responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        sdk(http, "k2").responses.create(model=MODEL, input="x", previous_response_id=first.id)
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_function_call_output_items_become_tool_turns(http, engine):
    tools = [{"type": "function", "name": "add", "parameters": {"type": "object", "properties": {}}}]
    sdk(http).responses.create(model=MODEL, tools=tools, input=[
        {"role": "user", "content": "Add 2 and 3."},
        {"type": "function_call", "call_id": "call_1", "name": "add", "arguments": '{"a": 2, "b": 3}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "5"}])
    sent = engine.calls[-1]
    assert sent["tools"][0]["function"]["name"] == "add"
    assistant, tool = engine.requests[-1].messages[-2:]
    assert assistant.tool_calls[0].id == "call_1" and assistant.tool_calls[0].name == "add"
    assert tool.role == "tool" and tool.tool_call_id == "call_1" and tool.content == "5"


def test_json_schema_text_format_is_guided_json(http, engine):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    sdk(http).responses.create(model=MODEL, input="x", text={"format": {
        "type": "json_schema", "name": "t", "schema": schema, "strict": True}})
    assert engine.calls[-1]["guided_json"] == schema


def test_bad_input_is_a_400_in_the_openai_envelope(http):
    response = http.post("/v1/responses", json={"input": [{"type": "function_call_output"}]})
    assert response.status_code == 400 and set(response.json()["error"]) == {"message", "type", "param", "code"}
    response = http.post("/v1/responses", json={"input": "x", "tools": [{"type": "web_search"}]})
    assert response.status_code == 400


def test_an_error_after_the_stream_started_is_an_error_event_then_failed(http, engine):
    engine.fail_with, engine.fail_after = QueueTimeoutError("late"), 1
    with sdk(http).responses.create(model=MODEL, input="Hi", stream=True) as stream:
        kinds = [e.type for e in stream]
    assert kinds[-2:] == ["error", "response.failed"]


# --- Anthropic Messages ------------------------------------------------------------------------
def test_messages_create_maps_system_and_returns_text_blocks(http, engine):
    message = claude(http).messages.create(model=MODEL, max_tokens=20, system="Be brief.",
                                           messages=[{"role": "user", "content": "Hi"}])
    assert message.id.startswith("msg_") and message.content[0].text == "Hello there friend"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 3
    assert turns(engine)[0] == ("system", "Be brief.")
    short = claude(http).messages.create(model=MODEL, max_tokens=1, messages=[{"role": "user", "content": "Hi"}])
    assert short.stop_reason == "max_tokens"


def test_messages_stream_events_exactly(http):
    with claude(http).messages.stream(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "Hi"}]) as s:
        kinds = [e.type for e in s]
        final = s.get_final_message()
    raw = [k for k in kinds if k not in ("text",)]
    assert raw[0] == "message_start" and raw[1] == "content_block_start" and raw[-1] == "message_stop"
    assert raw[-3:-1] == ["content_block_stop", "message_delta"]
    assert final.content[0].text == "Hello there friend" and final.usage.input_tokens >= 1


def test_tool_use_and_tool_result_blocks_become_tool_turns(http, engine):
    claude(http).messages.create(model=MODEL, max_tokens=20, tools=[
        {"name": "add", "input_schema": {"type": "object", "properties": {}}}], messages=[
        {"role": "user", "content": "Add 2 and 3."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "5"}]}])
    assistant, tool = engine.requests[-1].messages[-2:]
    assert assistant.tool_calls[0].id == "toolu_1" and assistant.tool_calls[0].arguments == '{"a": 2}'
    assert tool.role == "tool" and tool.tool_call_id == "toolu_1" and tool.content == "5"


def test_messages_errors_are_in_anthropics_envelope(http):
    response = http.post("/v1/messages", json={"messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error" and body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError) as info:
        claude(http).messages.create(model="no-such-model", max_tokens=4, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "not_found_error"


def test_anthropic_auth_by_x_api_key_or_bearer_and_its_envelope_from_every_layer(engine, tmp_path):
    settings = build_settings({"db_root": str(tmp_path), "enforce_h2ogpt_api_key": True,
                               "h2ogpt_api_keys": ["good"], "openai_max_request_bytes": 4096})
    app = TestClient(create_app(settings, engine))
    body = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}
    missing = app.post("/v1/messages", json=body)
    assert missing.status_code == 401 and missing.json()["type"] == "error"
    assert missing.json()["error"]["type"] == "authentication_error"
    assert app.post("/v1/messages", json=body, headers={"x-api-key": "good"}).status_code == 200
    assert app.post("/v1/messages", json=body, headers={"Authorization": "Bearer good",
                                                         "anthropic-version": "2023-06-01"}).status_code == 200
    too_big = app.post("/v1/messages", headers={"x-api-key": "good"},
                       json={**body, "messages": [{"role": "user", "content": "x" * 5000}]})
    assert too_big.status_code == 413 and too_big.json()["error"]["type"] == "request_too_large"
    # the OpenAI paths keep the OpenAI envelope
    openai_401 = app.post("/v1/responses", json={"input": "Hi"})
    assert openai_401.status_code == 401 and set(openai_401.json()) == {"error"}


class ShortWindowEngine(FakeEngine):
    """Refuses a conversation of more than ``turns`` earlier turns, as a full context window."""

    def __init__(self, turns: int):
        super().__init__("ok")
        self.turns = turns

    async def evaluate(self, request):
        if len(request.messages or []) > self.turns + 1:
            raise ContextLengthError("the prompt is longer than the context window")
        async for event in super().evaluate(request):
            yield event


def test_truncation_auto_drops_the_oldest_turns_and_disabled_is_a_400(tmp_path):
    engine = ShortWindowEngine(turns=2)
    app = TestClient(create_app(build_settings({"db_root": str(tmp_path)}), engine))
    earlier = [{"role": r, "content": f"turn {i}"} for i, r in enumerate(["user", "assistant"] * 3)]
    body = {"model": MODEL, "input": [*earlier, {"role": "user", "content": "last"}]}
    refused = app.post("/v1/responses", json=body)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"
    answered = app.post("/v1/responses", json={**body, "truncation": "auto"})
    assert answered.status_code == 200 and answered.json()["truncation"] == "auto"
    assert [text for _, text in turns(engine)] == ["turn 4", "turn 5", "last"]
