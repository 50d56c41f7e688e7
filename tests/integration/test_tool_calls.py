"""Tools on the real tiny model: a tools-aware chat template renders the tools, the calls and
their results in its own format; several calls per answer; the compiled call grammar."""

from __future__ import annotations

import json

import jsonschema
import llguidance

from src import tools
from src.engine.types import OutputConstraint
from src.evaluate import merged_calls
from src.params import EvalParams
from tests.structured_cases import TOOLS, TOOLS_TEMPLATE

WEATHER, ADD = TOOLS[0][1], TOOLS[1][1]
HISTORY = [
    {"role": "user", "content": "Add 2 and 3, and give the weather in Oslo."},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Oslo", "unit": "celsius"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "5"},
    {"role": "tool", "tool_call_id": "call_2", "content": "4 degrees"},
]
TWO_CALLS = ('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}</tool_call>\n'
             '<tool_call>{"name": "get_weather", "arguments": {"city": "London", "unit": "celsius"}}</tool_call>')


def rendered_prompt(evaluator, engine, **values) -> str:
    """The prompt text the engine renders for the request evaluate() submits."""
    params = EvalParams(instruction="Now add 5 and 4.", tools=[ADD, WEATHER], chat_conversation=HISTORY,
                        **values).with_defaults(evaluator.settings)
    return engine.detokenize(engine.prompt_ids(evaluator.checked_request(engine, params)))


def test_a_tools_template_renders_tools_calls_and_results_in_its_own_format(evaluator, engine):
    text = rendered_prompt(evaluator, engine, chat_template=TOOLS_TEMPLATE)
    assert "# Tools" in text and "<tools>" in text  # the template's own tool section
    assert json.dumps(ADD["function"]["name"]) in text and '"description": "Add two integers."' in text
    # the history's calls, each in the template's block, with the arguments as JSON
    assert '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>' in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}\n</tool_call>' in text
    assert "<tool_response>\n5\n</tool_response>" in text and "<tool_response>\n4 degrees\n</tool_response>" in text
    assert text.rstrip().endswith("<|im_start|>assistant")
    assert "To call a tool, answer only with" not in text  # no fallback instruction
    assert "<tool_response id=" not in text


def test_the_default_template_gets_the_fallback_format(evaluator, engine):
    text = rendered_prompt(evaluator, engine)
    assert "To call a tool, answer only with" in text and "# Tools" not in text
    assert '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>' in text
    assert '<tool_response id="call_1">5</tool_response>' in text


def test_tool_choice_none_still_renders_the_history_with_the_template(evaluator, engine):
    text = rendered_prompt(evaluator, engine, chat_template=TOOLS_TEMPLATE, tool_choice="none")
    assert "# Tools" not in text  # no tools offered
    assert '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>' in text


def typed_calls(chunks) -> list[tuple[str, str]]:
    """(name, arguments) of the typed tool-call deltas of an answer, merged by index."""
    merged = merged_calls([d for c in chunks for d in c.tool_calls])
    return [(d.name or "", json.loads(d.arguments)) for d in merged]


def test_a_forced_call_with_a_tools_template_is_a_valid_call(evaluator):
    chunks = list(evaluator.evaluate(EvalParams(
        instruction="Add 2 and 3.", tools=[ADD, WEATHER], chat_template=TOOLS_TEMPLATE,
        tool_choice={"type": "function", "function": {"name": "add"}}, max_new_tokens=48, temperature=0)))
    final = chunks[-1]
    assert final.finish_reason == "tool_calls"
    calls = tools.parse_tool_calls(final.response)
    assert typed_calls(chunks) == [(c.name, json.loads(c.arguments)) for c in calls]  # the calls came as data
    assert calls and all(c.name == "add" for c in calls)
    for call in calls:
        jsonschema.validate(json.loads(call.arguments), ADD["function"]["parameters"])


def test_asked_for_two_calls_the_model_makes_two_valid_calls(evaluator):
    chunks = list(evaluator.evaluate(EvalParams(
        instruction="What is the weather in Paris and in London?", tools=[WEATHER], tool_choice="required",
        max_new_tokens=80, temperature=0)))
    final = chunks[-1]
    calls = tools.parse_tool_calls(final.response)
    assert final.finish_reason == "tool_calls" and len(calls) == 2, final.response
    assert typed_calls(chunks) == [(c.name, json.loads(c.arguments)) for c in calls]
    for call in calls:
        jsonschema.validate(json.loads(call.arguments), WEATHER["function"]["parameters"])
    assert {json.loads(c.arguments)["city"] for c in calls} == {"Paris", "London"}


def test_without_parallel_calls_the_same_request_makes_one_call(evaluator):
    final = list(evaluator.evaluate(EvalParams(
        instruction="What is the weather in Paris and in London?", tools=[WEATHER], tool_choice="required",
        parallel_tool_calls=False, max_new_tokens=80, temperature=0)))[-1]
    assert final.finish_reason == "tool_calls" and len(tools.parse_tool_calls(final.response)) == 1
    assert final.response.count("<tool_call>") == 1


def matcher(engine, parallel: bool, required: bool = True):
    constraint = OutputConstraint("tool_call", {"functions": tools.functions([WEATHER, ADD]),
                                                "required": required, "parallel": parallel})
    return llguidance.LLMatcher(engine.grammars.ll_tokenizer, engine.grammars.grammar(constraint))


def test_the_compiled_grammar_takes_two_calls_only_when_parallel(engine):
    ids = engine.tokenize(TWO_CALLS)
    first = engine.tokenize(TWO_CALLS.split("\n")[0])
    many = matcher(engine, parallel=True)
    assert many.consume_tokens(ids) and many.is_accepting()
    one = matcher(engine, parallel=False)
    assert one.consume_tokens(first) and one.is_accepting()  # one complete call: it may end
    rest = engine.tokenize("\n" + TWO_CALLS.split("\n")[1])
    assert one.validate_tokens(rest) == 0  # nothing may follow the call
    for required in (True, False):  # a second call must be valid too
        bad = matcher(engine, parallel=True, required=required)
        assert bad.validate_tokens(engine.tokenize(TWO_CALLS.replace('"London"', '1'))) < len(ids) - 5
