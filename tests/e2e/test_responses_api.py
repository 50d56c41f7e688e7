"""The Responses API and Anthropic Messages end to end: generate.py on both local backends
(transformers, and llama.cpp: the default GGUF model's) with 2 workers, the real tiny
model, and the official clients (openai, openai-agents, anthropic). Every streamed event is
validated against the SDKs' published types (and the Open Responses required fields).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest
from pydantic import BaseModel, Field, TypeAdapter

from tests import open_responses
from tests.conftest import ROOT
from tests.server import RemoteServer
from tests.structured_cases import TOOLS

ADD = {"type": "function", "name": "add", "description": "Add two integers.",
       "parameters": TOOLS[1][1]["function"]["parameters"], "strict": True}
ADD_ANTHROPIC = {"name": "add", "description": "Add two integers.",
                 "input_schema": TOOLS[1][1]["function"]["parameters"]}
RESPONSE_EVENT = TypeAdapter(openai.types.responses.ResponseStreamEvent)
MESSAGE_EVENT = TypeAdapter(anthropic.types.RawMessageStreamEvent)


class Person(BaseModel):
    name: str = Field(max_length=20)
    age: int = Field(ge=0, le=120)


@pytest.fixture(scope="module", params=["transformers", "llamacpp"])
def server(request, tmp_path_factory):
    """Both local backends (the default GGUF model runs on llama.cpp once it is installed)."""
    with RemoteServer(tmp_path_factory.mktemp("responses"), "--openai_workers=2",
                      f"--llm_backend={request.param}") as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return server.client()


@pytest.fixture(scope="module")
def model(server):
    return server.model()


@pytest.fixture(scope="module")
def claude(server):
    return anthropic.Anthropic(base_url=server.url, api_key="EMPTY", max_retries=0)


def sse(response: httpx.Response) -> list[tuple[str, dict]]:
    """(event name, data) of every server-sent event."""
    out, name = [], ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            out.append((name, json.loads(line[len("data: "):])))
    return out


# --- Responses ---------------------------------------------------------------------------------
def test_create_returns_a_completed_message_with_usage(client, model):
    response = client.responses.create(model=model, input="Say hello.", max_output_tokens=12, temperature=0)
    assert response.id.startswith("resp_") and response.object == "response" and response.model == model
    assert response.status in ("completed", "incomplete") and response.output_text.strip()
    message = response.output[0]
    assert message.type == "message" and message.role == "assistant" and message.content[0].type == "output_text"
    usage = response.usage
    assert usage.input_tokens > 0 and 0 < usage.output_tokens <= 12
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_stream_sends_every_event_in_order_valid_against_the_published_types(server, model):
    body = {"model": model, "input": "Count to five.", "max_output_tokens": 16, "temperature": 0, "stream": True}
    with httpx.stream("POST", server.base_url + "/responses", json=body, timeout=120) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = sse(response)
    for name, data in events:
        assert name == data["type"]
        RESPONSE_EVENT.validate_python(data)  # the openai SDK's models of each event type
        assert not open_responses.problems(data)  # the Open Responses spec's required fields
    kinds = [d["type"] for _, d in events]
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    deltas = [d for _, d in events if d["type"] == "response.output_text.delta"]
    assert deltas and kinds[4:4 + len(deltas)] == ["response.output_text.delta"] * len(deltas)
    assert kinds[4 + len(deltas):] == ["response.output_text.done", "response.content_part.done",
                                       "response.output_item.done", events[-1][1]["type"]]
    assert events[-1][1]["type"] in ("response.completed", "response.incomplete")
    final = events[-1][1]["response"]
    text = "".join(d["delta"] for d in deltas)
    assert final["output"][0]["content"][0]["text"] == text and final["usage"]["output_tokens"] > 0


def test_sdk_stream_and_its_final_response(client, model):
    with client.responses.stream(model=model, input="Say hi.", max_output_tokens=64, temperature=0) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas and final.output_text == "".join(deltas)


def test_json_schema_format_answers_valid_json(client, model):
    schema = {"type": "object", "properties": {"colour": {"enum": ["red", "green"]}, "n": {"type": "integer"}},
              "required": ["colour", "n"], "additionalProperties": False}
    response = client.responses.create(model=model, input="Pick a colour and a number.", max_output_tokens=40,
                                       temperature=0, text={"format": {"type": "json_schema", "name": "pick",
                                                                       "schema": schema, "strict": True}})
    value = json.loads(response.output_text)
    assert value["colour"] in ("red", "green") and isinstance(value["n"], int)


def test_parse_with_a_pydantic_model_returns_the_parsed_object(client, model):
    response = client.responses.parse(model=model, input="Describe a person.", text_format=Person,
                                      max_output_tokens=48, temperature=0)
    assert isinstance(response.output_parsed, Person) and 0 <= response.output_parsed.age <= 120


def test_retrieve_input_items_delete_and_another_keys_404(server, client, model):
    created = client.responses.create(model=model, input="Remember: blue.", max_output_tokens=6, metadata={"k": "v"})
    got = client.responses.retrieve(created.id)
    assert got.id == created.id and got.output_text == created.output_text and got.metadata == {"k": "v"}
    items = client.responses.input_items.list(created.id)
    assert [i.type for i in items.data] == ["message"] and items.data[0].content[0].text == "Remember: blue."
    with pytest.raises(openai.NotFoundError) as info:
        server.client(api_key="another-key").responses.retrieve(created.id)
    assert info.value.body["code"] == "response_not_found"
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    unstored = client.responses.create(model=model, input="x", max_output_tokens=2, store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


def test_previous_response_id_continues_the_conversation(client, model):
    first = client.responses.create(model=model, input="Count from 1 to 3.", max_output_tokens=12, temperature=0)
    second = client.responses.create(model=model, input="Now say the next number.", previous_response_id=first.id,
                                     max_output_tokens=8, temperature=0)
    assert second.previous_response_id == first.id and second.output_text.strip()
    # the second turn was read with the first one before it: more prompt tokens than alone
    alone = client.responses.create(model=model, input="Now say the next number.", max_output_tokens=8,
                                    temperature=0, store=False)
    assert second.usage.input_tokens > alone.usage.input_tokens + first.usage.output_tokens


def test_function_call_then_function_call_output_turn(client, model):
    first = client.responses.create(model=model, input="Add 2 and 3.", tools=[ADD], tool_choice="required",
                                    max_output_tokens=96, temperature=0)
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and calls[0].name == "add" and calls[0].call_id and calls[0].id.startswith("fc_")
    args = json.loads(calls[0].arguments)
    assert isinstance(args["a"], int) and isinstance(args["b"], int)
    second = client.responses.create(
        model=model, previous_response_id=first.id, tools=[ADD], max_output_tokens=16, temperature=0,
        tool_choice="none",
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": str(args["a"] + args["b"])}])
    assert second.status in ("completed", "incomplete") and second.output[0].type == "message"
    assert second.output_text.strip()
    assert client.responses.input_items.list(second.id).data[0].type == "function_call_output"


def test_streamed_function_call_arguments_events(server, model):
    body = {"model": model, "input": "Add 2 and 3.", "tools": [ADD], "tool_choice": {"type": "function", "name": "add"},
            "max_output_tokens": 96, "temperature": 0, "stream": True}
    with httpx.stream("POST", server.base_url + "/responses", json=body, timeout=120) as response:
        events = [d for _, d in sse(response)]
    for data in events:
        RESPONSE_EVENT.validate_python(data)
        assert not open_responses.problems(data)
    kinds = [d["type"] for d in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(d for d in events if d["type"] == "response.function_call_arguments.done")
    pieces = "".join(d["delta"] for d in events if d["type"] == "response.function_call_arguments.delta")
    assert done["arguments"] == pieces and set(json.loads(pieces)) == {"a", "b"}
    assert kinds.index("response.output_item.added") < kinds.index("response.function_call_arguments.delta") \
        < kinds.index("response.function_call_arguments.done") < kinds.index("response.output_item.done")
    assert kinds[-1] == "response.completed" and events[-1]["response"]["output"][-1]["type"] == "function_call"


def test_an_openai_agents_agent_calls_its_function_tool(server, model):
    from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    seen: list[tuple[int, int]] = []

    @function_tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        seen.append((a, b))
        return a + b

    agent = Agent(name="calculator", instructions="Use the add tool to add numbers.", tools=[add],
                  tool_use_behavior="stop_on_first_tool",
                  model=OpenAIResponsesModel(model=model, openai_client=server.async_client()),
                  model_settings=ModelSettings(tool_choice="required", max_tokens=96, temperature=0))
    result = asyncio.run(Runner.run(agent, "Add 2 and 3."))
    assert len(seen) == 1 and result.final_output == str(sum(seen[0]))


# --- Anthropic Messages --------------------------------------------------------------------------
def test_messages_create_with_text_blocks_stop_reason_and_usage(claude, model):
    message = claude.messages.create(model=model, max_tokens=12, system="Answer briefly.",
                                     messages=[{"role": "user", "content": "Say hello."}],
                                     extra_body={"temperature": 0})
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert message.stop_reason in ("end_turn", "max_tokens") and message.usage.input_tokens > 0
    assert 0 < message.usage.output_tokens <= 12
    short = claude.messages.create(model=model, max_tokens=1, messages=[{"role": "user", "content": "Tell a story."}])
    assert short.stop_reason == "max_tokens"


def test_messages_stream_events_exactly_and_valid(server, claude, model):
    body = {"model": model, "max_tokens": 12, "stream": True, "messages": [{"role": "user", "content": "Say hi."}]}
    with httpx.stream("POST", server.base_url + "/messages", json=body, timeout=120,
                      headers={"anthropic-version": "2023-06-01", "x-api-key": "EMPTY"}) as response:
        assert response.status_code == 200
        events = sse(response)
    for name, data in events:
        assert name == data["type"]
        MESSAGE_EVENT.validate_python(data) if data["type"] != "ping" else None
    kinds = [d["type"] for _, d in events]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert set(kinds[3:-3]) == {"content_block_delta"} and kinds[-3:] == ["content_block_stop", "message_delta",
                                                                          "message_stop"]
    with claude.messages.stream(model=model, max_tokens=12, messages=[{"role": "user", "content": "Say hi."}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text and final.content[0].text == text and final.usage.output_tokens > 0


def test_a_matched_stop_sequence_is_named_and_chat_completions_are_unaffected(server, claude, model, client):
    """The engine's final event names the stop string that matched (each backend fills it);
    Messages says ``stop_sequence`` with that string, streamed or not."""
    ask = {"model": model, "max_tokens": 40, "messages": [{"role": "user", "content": "Describe the sea."}],
           "extra_body": {"temperature": 0}}
    text = claude.messages.create(**ask).content[0].text  # greedy: the same answer each time
    words = [w for w in text.split() if len(w) >= 3 and w.isalpha()]
    assert len(words) >= 3, text
    stop = words[2]
    message = claude.messages.create(**ask, stop_sequences=["qqzzx never", stop])
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == stop
    assert message.content[0].text.strip() == text[:text.index(stop)].strip()
    with claude.messages.stream(**ask, stop_sequences=[stop]) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == stop
    assert streamed.strip() == message.content[0].text.strip()
    unmatched = claude.messages.create(**ask, stop_sequences=["qqzzx never"])
    assert unmatched.stop_reason in ("end_turn", "max_tokens") and unmatched.stop_sequence is None
    chat = client.chat.completions.create(model=model, max_tokens=40, temperature=0, stop=[stop],
                                          messages=ask["messages"])
    assert chat.choices[0].finish_reason == "stop" and "stop_sequence" not in chat.choices[0].model_dump()
    assert chat.choices[0].message.content.strip() == message.content[0].text.strip()


def test_count_tokens_counts_the_prompt(claude, model):
    short = claude.messages.count_tokens(model=model, messages=[{"role": "user", "content": "Hi"}])
    long = claude.messages.count_tokens(model=model, messages=[{"role": "user", "content": "Hi " * 50}])
    assert 0 < short.input_tokens < long.input_tokens


def test_tool_use_then_tool_result_turn(claude, model):
    first = claude.messages.create(model=model, max_tokens=96, tools=[ADD_ANTHROPIC],
                                   tool_choice={"type": "any"}, messages=[{"role": "user", "content": "Add 2 and 3."}],
                                   extra_body={"temperature": 0})
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "add" and isinstance(use.input["a"], int) and isinstance(use.input["b"], int)
    second = claude.messages.create(model=model, max_tokens=16, tools=[ADD_ANTHROPIC], messages=[
        {"role": "user", "content": "Add 2 and 3."},
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": str(use.input["a"] + use.input["b"])}]}],
        tool_choice={"type": "none"}, extra_body={"temperature": 0})
    assert second.stop_reason in ("end_turn", "max_tokens") and second.content[0].type == "text"


def test_streamed_tool_use_sends_its_input_as_json_deltas(claude, model):
    with claude.messages.stream(model=model, max_tokens=96, tools=[ADD_ANTHROPIC], tool_choice={"type": "any"},
                                messages=[{"role": "user", "content": "Add 2 and 3."}],
                                extra_body={"temperature": 0}) as stream:
        events = list(stream)
        final = stream.get_final_message()
    pieces = "".join(e.delta.partial_json for e in events
                     if e.type == "content_block_delta" and e.delta.type == "input_json_delta")
    use = next(b for b in final.content if b.type == "tool_use")
    assert json.loads(pieces) == use.input and set(use.input) == {"a", "b"} and final.stop_reason == "tool_use"


def test_messages_errors_use_anthropics_envelope(server, claude, model):
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(model=model, max_tokens=0, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "invalid_request_error"
    missing = httpx.post(server.base_url + "/messages/nope", json={})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_both_apis_are_in_openapi(server):
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    for path in ("/v1/responses", "/v1/responses/{response_id}", "/v1/responses/{response_id}/input_items",
                 "/v1/messages", "/v1/messages/count_tokens"):
        assert path in paths


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("path", ["/responses", "/messages"])
def test_a_client_that_leaves_a_stream_cancels_the_generation(server, model, path):
    body = {"model": model, "stream": True, "min_new_tokens": 4000}
    body.update({"input": "Say hello.", "max_output_tokens": 4000} if path == "/responses" else
                {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 4000})
    with httpx.stream("POST", server.base_url + path, json=body, timeout=60) as response:
        seen, active = 0, None
        for line in response.iter_lines():
            seen += line.startswith("data: ")
            if seen >= 6:
                active = server.health()["active_requests"]  # asked while the stream is open
                break
        assert active == 1
    # 4000 tokens take minutes; a cancelled request leaves the engine at once.
    assert wait_for(lambda: server.health()["active_requests"] == 0, timeout=30)


@pytest.mark.parametrize("page", ["responses.md", "anthropic.md"])
def test_the_docs_examples_run(server, model, page):
    """Every Python example of docs/responses.md and docs/anthropic.md runs as written
    (against this server's address and model)."""
    text = (ROOT / "docs" / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    for code in blocks:
        code = code.replace("http://localhost:5000", server.url).replace(
            '"HuggingFaceTB/SmolLM2-135M-Instruct"', repr(model))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip()
