"""Structured output and tools end to end: generate.py, the real tiny model, the openai SDK
and LangChain as clients (one shared server, short answers)."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from tests.server import RemoteServer
from tests.structured_cases import TOOLS

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


def test_streamed_required_call_assembles_into_valid_arguments(client, model):
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": TOOLS[0][0]}], tools=[WEATHER, ADD],
        tool_choice="required", max_tokens=64, temperature=0, stream=True)
    name, call_id, arguments, finish = None, None, "", None
    for chunk in stream:
        choice = chunk.choices[0]
        for call in choice.delta.tool_calls or []:
            if call.id:
                call_id, name = call.id, call.function.name
            arguments += call.function.arguments or ""
        finish = choice.finish_reason or finish
    assert finish == "tool_calls" and call_id.startswith("call_")
    schema = {"get_weather": WEATHER, "add": ADD}[name]["function"]["parameters"]
    jsonschema.validate(json.loads(arguments), schema)


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
