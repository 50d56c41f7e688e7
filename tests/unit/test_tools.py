"""Tool calling without a model: the call grammar, the fallback rendering, the parser and
the stream cut into OpenAI's tool-call deltas (through the API with a scripted engine)."""

from __future__ import annotations

import json

import llguidance
import pytest
from fastapi.testclient import TestClient

from openai_server.app import create_app
from src import tools
from src.engine.types import Capabilities
from src.errors import InvalidParamsError, UnsupportedFeatureError
from src.evaluate import Evaluator
from src.params import EvalParams
from src.settings import build_settings
from tests.structured_cases import TOOLS
from tests.unit.fake_engine import FakeEngine

FUNCS = [t for _, t in TOOLS]
CALL = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'


def test_every_test_tool_compiles_into_a_valid_call_grammar():
    assert len(FUNCS) >= 10
    for required in (True, False):
        grammar = llguidance.LLMatcher.grammar_from_lark(tools.call_grammar(tools.functions(FUNCS), required))
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
        assert not is_error, messages


def test_tool_choice_naming_an_unknown_function_is_refused():
    with pytest.raises(InvalidParamsError) as info:
        tools.offered(FUNCS, {"type": "function", "function": {"name": "nope"}})
    assert info.value.param == "tool_choice"
    assert [f["name"] for f in tools.offered(FUNCS, {"type": "function", "function": {"name": "add"}})] == ["add"]
    assert tools.offered(FUNCS, "none") == []


def test_fallback_messages_add_the_tools_to_the_system_prompt():
    funcs = tools.functions(FUNCS[:1])
    with_system = tools.fallback_messages([{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "hi"}], funcs)
    assert with_system[0]["content"] == "Be brief.\n" + tools.tools_instruction(funcs)
    without = tools.fallback_messages([{"role": "user", "content": "hi"}], funcs)
    assert without[0] == {"role": "system", "content": tools.tools_instruction(funcs)}


def test_template_message_gives_arguments_as_a_dict():
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}]}
    message = tools.template_message(call)
    assert message["content"] == "" and message["tool_calls"][0]["function"]["arguments"] == {"a": 2, "b": 3}
    result = tools.template_message({"role": "tool", "tool_call_id": "call_1", "content": "5"})
    assert result == {"role": "tool", "tool_call_id": "call_1", "content": "5"}


def test_history_renders_calls_and_results_in_the_fallback_format():
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}]}
    assert tools.render_history_message(call) == {"role": "assistant", "content": CALL}
    result = tools.render_history_message({"role": "tool", "tool_call_id": "call_1", "content": "5"})
    assert result == {"role": "user", "content": '<tool_response id="call_1">5</tool_response>'}


def test_parse_tool_calls_reads_the_call_and_leaves_text_alone():
    [call] = tools.parse_tool_calls(CALL)
    assert call.name == "add" and json.loads(call.arguments) == {"a": 2, "b": 3}
    assert call.id.startswith("call_")
    assert tools.parse_tool_calls("The answer is 5.") == []


def test_stream_cut_into_name_then_argument_fragments():
    stream = tools.ToolCallStream()
    events = []
    pieces = [CALL[i:i + 3] for i in range(0, len(CALL), 3)]
    for i, piece in enumerate(pieces):
        events.extend(stream.feed(piece, final=i == len(pieces) - 1))
    assert events[0][0] == "call" and events[0][1][0] == 0 and events[0][1][1].name == "add"
    assert all(kind == "arguments" and index == 0 for kind, (index, _) in events[1:])
    assert json.loads("".join(v for _, (_, v) in events[1:])) == {"a": 2, "b": 3}


TWO_CALLS = (CALL + "\n" + '<tool_call>{"name": "get_weather", "arguments": '
             '{"city": "a}</tool_call>b", "unit": "celsius"}}</tool_call>')


@pytest.mark.parametrize("size", [1, 2, 5, 200])
def test_stream_of_two_calls_gives_each_its_index_name_and_arguments(size):
    stream = tools.ToolCallStream()
    events = []
    pieces = [TWO_CALLS[i:i + size] for i in range(0, len(TWO_CALLS), size)]
    for i, piece in enumerate(pieces):
        events.extend(stream.feed(piece, final=i == len(pieces) - 1))
    starts = [(index, call.name) for kind, (index, call) in events if kind == "call"]
    assert starts == [(0, "add"), (1, "get_weather")]
    arguments = {0: "", 1: ""}
    for kind, (index, value) in events:
        if kind == "arguments":
            arguments[index] += value
    # the second call's string holds "}</tool_call>", which does not end the call
    assert json.loads(arguments[0]) == {"a": 2, "b": 3}
    assert json.loads(arguments[1]) == {"city": "a}</tool_call>b", "unit": "celsius"}
    assert [(c.name, json.loads(c.arguments)) for c in tools.parse_tool_calls(TWO_CALLS)][0] == ("add", {"a": 2, "b": 3})
    assert len(tools.parse_tool_calls(TWO_CALLS)) == 2


def test_call_grammar_allows_several_calls_only_when_parallel():
    one = tools.call_grammar(tools.functions(FUNCS[:2]), True, parallel=False)
    many = tools.call_grammar(tools.functions(FUNCS[:2]), True, parallel=True)
    assert 'calls: call ("\\n" call)*' in many and "calls: call\n" in one


def test_a_repeated_call_is_dropped_from_the_calls_and_the_stream():
    text = CALL + "\n" + CALL
    assert tools.repeats_a_call(text) and not tools.repeats_a_call(TWO_CALLS)
    assert not tools.repeats_a_call(text[:-1])  # not complete yet
    assert len(tools.parse_tool_calls(text)) == 1 and len(tools.parse_tool_calls(text, keep_repeats=True)) == 2
    stream = tools.ToolCallStream()
    events = []
    for i in range(0, len(text), 4):
        events.extend(stream.feed(text[i:i + 4], final=i + 4 >= len(text)))
    assert [kind for kind, _ in events if kind == "call"] == ["call"]
    assert {index for _, (index, _) in events} == {0}
    # a later call that starts like an earlier one is held, then sent whole once it differs
    other = CALL.replace('"b": 3', '"b": 4')
    stream = tools.ToolCallStream()
    events = stream.feed(CALL + "\n") + stream.feed(other[:-20])
    assert [e[0] for e in events].count("call") == 1
    events = stream.feed(other[-20:], final=True)
    assert events[0][0] == "call" and events[0][1][0] == 1
    assert json.loads("".join(v for kind, (_, v) in events if kind == "arguments")) == {"a": 2, "b": 4}


def test_stream_of_plain_text_stays_text():
    stream = tools.ToolCallStream()
    assert stream.feed("Hel") == [("text", "Hel")]
    assert stream.feed("lo", final=True) == [("text", "lo")]


@pytest.fixture
def api():
    engine = FakeEngine(answer=CALL)  # streamed word by word
    with TestClient(create_app(build_settings({}), engine)) as client:
        yield client, engine


def sse_chunks(response) -> list[dict]:
    lines = [ln[6:] for ln in response.text.splitlines() if ln.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(ln) for ln in lines[:-1]]


def test_two_calls_in_one_answer_come_back_as_two_tool_calls(api):
    client, engine = api
    engine.answer = TWO_CALLS
    body = client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "add, then weather"}], "tools": FUNCS,
        "tool_choice": "required"}).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["add", "get_weather"]
    assert all(c["type"] == "function" and c["id"].startswith("call_") for c in calls)
    assert calls[0]["id"] != calls[1]["id"]
    assert json.loads(calls[1]["function"]["arguments"]) == {"city": "a}</tool_call>b", "unit": "celsius"}
    assert engine.calls[-1]["parallel_tool_calls"] is True


def test_two_streamed_calls_each_have_their_index(api):
    client, engine = api
    engine.answer = TWO_CALLS
    chunks = sse_chunks(client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "add, then weather"}], "tools": FUNCS,
        "tool_choice": "required", "stream": True}))
    deltas = [d for c in chunks if c["choices"] for d in c["choices"][0]["delta"].get("tool_calls") or []]
    firsts = [d for d in deltas if "id" in d]
    assert [(d["index"], d["type"], d["function"]["name"]) for d in firsts] == [
        (0, "function", "add"), (1, "function", "get_weather")]
    assert all(set(d) == {"index", "function"} and set(d["function"]) == {"arguments"}
               for d in deltas if "id" not in d)
    arguments = ["".join(d["function"]["arguments"] for d in deltas if d["index"] == i) for i in (0, 1)]
    assert json.loads(arguments[0]) == {"a": 2, "b": 3}
    assert json.loads(arguments[1])["unit"] == "celsius"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_forced_call_response_has_tool_calls_and_no_content(api):
    client, _ = api
    body = client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "add"}], "tools": FUNCS, "tool_choice": "required"}).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_") and call["function"]["name"] == "add"
    assert json.loads(call["function"]["arguments"]) == {"a": 2, "b": 3}


def test_unknown_tool_choice_is_a_400_with_param(api):
    client, _ = api
    response = client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "add"}], "tools": FUNCS,
        "tool_choice": {"type": "function", "function": {"name": "nope"}}})
    assert response.status_code == 400 and response.json()["error"]["param"] == "tool_choice"


def test_streamed_call_in_openai_shape(api):
    client, _ = api
    response = client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "add"}], "tools": FUNCS, "tool_choice": "required",
        "stream": True})
    lines = [ln[6:] for ln in response.text.splitlines() if ln.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(ln) for ln in lines[:-1]]
    deltas = [c["choices"][0]["delta"].get("tool_calls") for c in chunks if c["choices"]]
    calls = [d[0] for d in deltas if d]
    first = calls[0]
    assert first["index"] == 0 and first["id"].startswith("call_") and first["type"] == "function"
    assert first["function"]["name"] == "add"
    assert all(set(c) == {"index", "function"} and set(c["function"]) == {"arguments"} for c in calls[1:])
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"a": 2, "b": 3}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert not any(c["choices"][0]["delta"].get("content") for c in chunks if c["choices"])


class NoConstraintsBackend:
    name = "remote"
    capabilities = Capabilities()  # neither constrained decoding nor tools


@pytest.mark.parametrize(("values", "param"), [
    ({"tools": FUNCS[:1]}, "tools"),
    ({"response_format": "json_object"}, "response_format"),
    ({"guided_choice": ["a", "b"]}, "response_format"),
])
def test_a_backend_that_cannot_constrain_refuses_up_front(values, param):
    settings = build_settings({})
    params = EvalParams(instruction="hi", **values).with_defaults(settings)
    with pytest.raises(UnsupportedFeatureError) as info:
        Evaluator(settings, registry=None).checked_request(NoConstraintsBackend(), params)
    assert info.value.param == param


class TemplateTokenizer:
    """Just what template detection reads of a tokenizer: its chat_template."""

    def __init__(self, chat_template):
        self.chat_template = chat_template


def test_a_template_supports_tools_when_it_reads_the_tools_variable():
    from src.engine.prompting import template_takes_tools
    from tests.structured_cases import TOOLS_TEMPLATE

    plain = "{% for m in messages %}{{ m.content }}{% endfor %}"
    assert template_takes_tools(TemplateTokenizer(TOOLS_TEMPLATE))
    assert not template_takes_tools(TemplateTokenizer(plain))
    assert not template_takes_tools(TemplateTokenizer(None))
    # the word in text or a comment, or a variable the template sets itself, does not count
    assert not template_takes_tools(TemplateTokenizer("{# tools #}You have no tools. " + plain))
    assert not template_takes_tools(TemplateTokenizer("{% set tools = [] %}{{ tools }}" + plain))
    # the request's (or the model's) chat_template wins over the tokenizer's
    assert template_takes_tools(TemplateTokenizer(plain), TOOLS_TEMPLATE)
    assert not template_takes_tools(TemplateTokenizer(TOOLS_TEMPLATE), plain)
    # named templates: the tool_use one
    assert template_takes_tools(TemplateTokenizer({"default": plain, "tool_use": TOOLS_TEMPLATE}))
    assert not template_takes_tools(TemplateTokenizer("{% if tools %}"))  # does not parse
