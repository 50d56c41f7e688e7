"""Structured output and tools end to end: generate.py, the real tiny model, the openai SDK
and LangChain as clients (one shared server, short answers)."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from tests.server import RemoteServer
from tests.structured_cases import TOOLS, TOOLS_TEMPLATE

WEATHER = TOOLS[0][1]
ADD = TOOLS[1][1]


class Person(BaseModel):
    name: str = Field(max_length=20)
    age: int = Field(ge=0, le=120)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RemoteServer(tmp_path_factory.mktemp("structured"), "--openai_workers=1") as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return server.client()


@pytest.fixture(scope="module")
def model(server):
    return server.model()


@pytest.fixture(scope="module")
def llamacpp(server) -> bool:
    """The server runs the llama.cpp backend (H2OGPT_TEST_BACKEND=llamacpp): one call per
    answer, the model's own chat template (docs/structured_output.md)."""
    return "--llm_backend=llamacpp" in server.flags


def test_parse_with_a_pydantic_model_returns_the_parsed_object(client, model):
    completion = client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "Describe a person."}],
        response_format=Person, max_tokens=48, temperature=0,
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Person) and 0 <= parsed.age <= 120


def test_json_schema_response_is_valid(client, model):
    schema = {"type": "object", "properties": {"colour": {"enum": ["red", "green"]}, "n": {"type": "integer"}},
              "required": ["colour", "n"], "additionalProperties": False}
    response = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Pick a colour and a number."}], max_tokens=32,
        temperature=0, response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema,
                                                                               "strict": True}})
    assert response.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(response.choices[0].message.content), schema)


def test_an_unenforceable_schema_is_a_400_with_param(client, model):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "x"}], max_tokens=8,
            response_format={"type": "json_schema", "json_schema": {
                "name": "bad", "schema": {"type": "object", "properties": {"a": {"type": "string", "format": "nope"}}}}})
    assert info.value.status_code == 400 and info.value.body["param"] == "response_format"


def test_guided_choice_in_extra_body(client, model):
    response = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Is fire hot?"}], max_tokens=4,
        extra_body={"guided_choice": ["yes", "no"]})
    assert response.choices[0].message.content in ("yes", "no")


def streamed_calls(stream) -> tuple[list[dict], str | None, int]:
    """The calls of a streamed answer, assembled by index: [{id, name, arguments}], the
    finish reason and the number of chunks with a tool-call delta."""
    calls: dict[int, dict] = {}
    finish, with_calls = None, 0
    for chunk in stream:
        choice = chunk.choices[0]
        with_calls += bool(choice.delta.tool_calls)
        for delta in choice.delta.tool_calls or []:
            if delta.id:  # a call's first delta: its index, id, type and name
                assert delta.index not in calls and delta.type == "function"
                calls[delta.index] = {"id": delta.id, "name": delta.function.name, "arguments": ""}
            calls[delta.index]["arguments"] += delta.function.arguments or ""
        finish = choice.finish_reason or finish
    assert sorted(calls) == list(range(len(calls)))
    return [calls[i] for i in sorted(calls)], finish, with_calls


def test_streamed_required_call_assembles_into_valid_arguments(client, model):
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": TOOLS[0][0]}], tools=[WEATHER, ADD],
        tool_choice="required", parallel_tool_calls=False, max_tokens=64, temperature=0, stream=True)
    [call], finish, _ = streamed_calls(stream)
    assert finish == "tool_calls" and call["id"].startswith("call_")
    schema = {"get_weather": WEATHER, "add": ADD}[call["name"]]["function"]["parameters"]
    jsonschema.validate(json.loads(call["arguments"]), schema)


TWO_CITIES = [{"role": "user", "content": "What is the weather in Paris and in London?"}]


def test_two_calls_in_one_answer(client, model, llamacpp):
    response = client.chat.completions.create(model=model, messages=TWO_CITIES, tools=[WEATHER],
                                              tool_choice="required", max_tokens=80, temperature=0)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls
    if llamacpp:  # its constraint is a JSON schema of one call
        assert len(calls) == 1 and calls[0].function.name == "get_weather"
        return
    assert len(calls) == 2 and len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)
    for call in calls:
        assert call.type == "function" and call.function.name == "get_weather"
        jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    assert {json.loads(c.function.arguments)["city"] for c in calls} == {"Paris", "London"}
    # the same request streamed: each call has its own index, id and name, then its arguments
    stream = client.chat.completions.create(model=model, messages=TWO_CITIES, tools=[WEATHER],
                                            tool_choice="required", max_tokens=80, temperature=0, stream=True)
    streamed, finish, with_calls = streamed_calls(stream)
    assert finish == "tool_calls" and with_calls > 4
    assert [(c["name"], json.loads(c["arguments"])) for c in streamed] == [
        (c.function.name, json.loads(c.function.arguments)) for c in calls]


def test_parallel_tool_calls_false_makes_one_call(client, model):
    response = client.chat.completions.create(model=model, messages=TWO_CITIES, tools=[WEATHER],
                                              tool_choice="required", parallel_tool_calls=False,
                                              max_tokens=80, temperature=0)
    assert response.choices[0].finish_reason == "tool_calls" and len(response.choices[0].message.tool_calls) == 1


def test_a_tools_template_renders_the_call_and_the_result_and_still_calls(client, model, llamacpp):
    template = {"chat_template": TOOLS_TEMPLATE}
    if llamacpp:  # llama-server renders with the model's own template
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Add 2 and 3."}],
                                           tools=[ADD], max_tokens=8, extra_body=template)
        assert info.value.body["param"] == "chat_template"
        return
    first = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Add 2 and 3."}], tools=[ADD],
        tool_choice={"type": "function", "function": {"name": "add"}}, max_tokens=48, temperature=0,
        extra_body=template)
    [call] = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls" and set(json.loads(call.function.arguments)) == {"a", "b"}
    messages = [{"role": "user", "content": "Add 2 and 3."}, first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "5"}]
    second = client.chat.completions.create(model=model, messages=messages, tools=[ADD], max_tokens=24,
                                            temperature=0, extra_body=template)
    fallback = client.chat.completions.create(model=model, messages=messages, tools=[ADD], max_tokens=24,
                                              temperature=0)
    # the template's prompt (tools section, its own call and result blocks) is not the fallback's
    assert second.usage.prompt_tokens != fallback.usage.prompt_tokens
    assert second.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_json_code_streams_the_fenced_json(client, model):
    cat = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                            "age": {"type": "integer", "minimum": 0, "maximum": 30}},
           "required": ["name", "age"], "additionalProperties": False}
    kwargs = dict(model=model, messages=[{"role": "user", "content": "Describe a cat as JSON."}], max_tokens=48,
                  temperature=0, response_format={"type": "json_code"}, extra_body={"guided_json": cat})
    answer = client.chat.completions.create(**kwargs).choices[0]
    whole = answer.message.content
    assert answer.finish_reason == "stop" and whole.startswith("```json\n") and whole.endswith("\n```")
    jsonschema.validate(json.loads(whole[len("```json\n"):-len("\n```")]), cat)
    pieces = [c.choices[0].delta.content for c in client.chat.completions.create(**kwargs, stream=True)
              if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 2 and pieces[0].startswith("```json\n") and pieces[-1].endswith("\n```")
    assert "".join(pieces) == whole


def test_second_turn_with_the_tool_result_answers(client, model):
    messages = [{"role": "user", "content": "Add 2 and 3."}]
    first = client.chat.completions.create(
        model=model, messages=messages, tools=[ADD], tool_choice={"type": "function", "function": {"name": "add"}},
        max_tokens=48, temperature=0)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.content is None
    [call] = message.tool_calls
    assert call.function.name == "add" and set(json.loads(call.function.arguments)) == {"a", "b"}
    messages += [message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "5"}]
    second = client.chat.completions.create(model=model, messages=messages, tools=[ADD], tool_choice="none",
                                            max_tokens=24, temperature=0)
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls


def test_tool_choice_naming_a_missing_function_is_a_400(client, model):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "x"}], tools=[ADD],
            tool_choice={"type": "function", "function": {"name": "nope"}}, max_tokens=8)
    assert info.value.body["param"] == "tool_choice"


def test_langchain_bind_tools_with_a_forced_tool(server, model):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=server.base_url, api_key="EMPTY",
                     model=model, max_tokens=48, temperature=0)
    message = llm.bind_tools([ADD], tool_choice="add").invoke("Add 2 and 3.")
    [call] = message.tool_calls
    assert call["name"] == "add" and set(call["args"]) == {"a", "b"}


def test_langchain_with_structured_output_returns_the_model(server, model):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=server.base_url, api_key="EMPTY", model=model, max_tokens=48, temperature=0)
    person = llm.with_structured_output(Person).invoke("Describe a person.")
    assert isinstance(person, Person) and 0 <= person.age <= 120
