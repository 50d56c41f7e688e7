"""Constrained decoding on the real tiny model: schemas, JSON mode, guided_* and bad constraints."""

from __future__ import annotations

import json

import jsonschema
import pytest

from src import tools
from src.conversation import json_instruction
from src.engine.types import GenerationRequest, OutputConstraint, SamplingOptions
from src.errors import InvalidParamsError
from src.evaluate import until_a_repeated_call
from src.params import EvalParams
from tests.conftest import wait_idle
from tests.structured_cases import SCHEMAS, TOOLS

MAX_TOKENS = 64


def run_all(engine, cases, max_tokens=MAX_TOKENS):
    """Submit every (prompt, schema) at once (they share the batch); (text, finish) each."""
    handles = []
    for prompt, schema in cases:
        messages = ({"role": "system", "content": json_instruction(schema)}, {"role": "user", "content": prompt})
        handles.append(engine.submit(GenerationRequest(
            messages=messages, options=SamplingOptions(max_new_tokens=max_tokens),
            constraint=OutputConstraint("json_schema", schema))))
    out = []
    for handle in handles:
        text, finish = "", None
        for event in handle:
            text += event.delta
            finish = event.finish_reason
        out.append((text, finish))
    return out


def test_every_schema_answer_that_stops_validates(engine):
    results = run_all(engine, SCHEMAS)
    stopped = 0
    for (prompt, schema), (text, finish) in zip(SCHEMAS, results, strict=True):
        if finish == "stop":
            stopped += 1
            jsonschema.validate(json.loads(text), schema)  # raises on any invalid answer
        else:
            assert finish == "length", (prompt, finish)
    assert len(SCHEMAS) >= 20
    assert stopped >= len(SCHEMAS) * 0.75, f"only {stopped}/{len(SCHEMAS)} finished within {MAX_TOKENS} tokens"


def test_json_object_mode_returns_an_object(evaluator):
    final = list(evaluator.evaluate(EvalParams(
        instruction="Give a cat's name and age.", response_format="json_object", max_new_tokens=48,
        guided_json={"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}},
                     "required": ["name"], "additionalProperties": False})))[-1]
    assert final.finish_reason == "stop"
    assert isinstance(json.loads(final.response)["name"], str)


def test_json_code_is_fenced_json(evaluator):
    final = list(evaluator.evaluate(EvalParams(
        instruction="Say yes.", response_format="json_code", max_new_tokens=32,
        guided_json={"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
                     "additionalProperties": False})))[-1]
    assert final.response.startswith("```json\n") and final.response.endswith("\n```")
    assert isinstance(json.loads(final.response[8:-4])["ok"], bool)


def test_guided_choice_answers_one_of_the_choices(evaluator):
    final = list(evaluator.evaluate(EvalParams(
        instruction="Is the sky blue?", guided_choice=["yes", "no", "maybe"], max_new_tokens=8)))[-1]
    assert final.response in ("yes", "no", "maybe")
    assert final.finish_reason == "stop"


def test_guided_regex_matches(evaluator):
    final = list(evaluator.evaluate(EvalParams(
        instruction="Give a time.", guided_regex="[0-2][0-9]:[0-5][0-9]", max_new_tokens=8)))[-1]
    assert len(final.response) == 5 and final.response[2] == ":" and final.response.replace(":", "").isdigit()


def test_guided_grammar_follows_the_grammar(evaluator):
    grammar = 'start: "The answer is " ANSWER "."\nANSWER: "red" | "blue"'
    final = list(evaluator.evaluate(EvalParams(instruction="Pick red or blue.", guided_grammar=grammar,
                                               max_new_tokens=16)))[-1]
    assert final.response in ("The answer is red.", "The answer is blue.")


@pytest.mark.parametrize(("constraint", "param"), [
    (OutputConstraint("json_schema", {"type": "object", "properties": {"a": {"type": "string", "format": "nope"}}}),
     "response_format"),
    (OutputConstraint("json_schema", {"type": "object", "dependentRequired": {"a": ["b"]}}), "response_format"),
    (OutputConstraint("json_schema", {"properties": {"a": {"$ref": "#/$defs/missing"}}}), "response_format"),
    (OutputConstraint("regex", "(unclosed"), "guided_regex"),
    (OutputConstraint("grammar", "start: undefined_rule"), "guided_grammar"),
])
def test_a_constraint_that_cannot_be_enforced_is_refused_with_its_param(engine, constraint, param):
    with pytest.raises(InvalidParamsError) as info:
        engine.submit(GenerationRequest(messages=({"role": "user", "content": "hi"},), constraint=constraint))
    assert info.value.param == param
    assert wait_idle(engine) == 0


def test_a_schema_compiles_once(engine):
    schema = {"type": "object", "properties": {"cached": {"type": "integer"}}, "required": ["cached"]}
    grammars = engine.grammars
    grammars.grammar(OutputConstraint("json_schema", schema))
    misses = grammars.misses
    grammars.grammar(OutputConstraint("json_schema", dict(reversed(list(schema.items())))))  # same, keys reordered
    assert grammars.misses == misses


# With several calls allowed the tiny model mostly writes a second call (or repeats the first,
# which ends the answer): it needs room for two calls to stop.
@pytest.mark.parametrize(("parallel", "max_tokens"), [(False, MAX_TOKENS), (True, 160)])
def test_every_required_tool_call_names_an_offered_tool_with_valid_arguments(evaluator, engine, parallel,
                                                                             max_tokens):
    assert len(TOOLS) >= 10
    cases = []
    for i, (prompt, tool) in enumerate(TOOLS):
        offered = [tool, TOOLS[(i + 1) % len(TOOLS)][1]]
        params = EvalParams(instruction=prompt, tools=offered, tool_choice="required", max_new_tokens=max_tokens,
                            parallel_tool_calls=parallel, temperature=0).with_defaults(evaluator.settings)
        cases.append((offered, engine.submit(evaluator.checked_request(engine, params))))
    stopped = 0
    for offered, handle in cases:
        text, finish = "", None
        for event in until_a_repeated_call(handle):  # as evaluate() reads it (parallel calls)
            text += event.delta
            finish = event.finish_reason
        handle.cancel()
        if finish != "stop":
            assert finish == "length"
            continue
        stopped += 1
        calls = tools.parse_tool_calls(text)
        assert calls and (parallel or len(calls) == 1), text
        schemas = {t["function"]["name"]: t["function"]["parameters"] for t in offered}
        for call in calls:
            assert call.name in schemas
            jsonschema.validate(json.loads(call.arguments), schemas[call.name])
    assert stopped >= len(TOOLS) * 0.75


def test_auto_tool_choice_lets_the_model_answer_in_text(evaluator):
    final = list(evaluator.evaluate(EvalParams(
        instruction="Hello! How are you today?", tools=[TOOLS[1][1]], tool_choice="auto", max_new_tokens=24,
        temperature=0)))[-1]
    assert final.finish_reason in ("stop", "length")
    assert final.response.strip() and tools.parse_tool_calls(final.response) == []  # a text answer


def test_min_new_tokens_with_a_constraint_is_refused(engine):
    with pytest.raises(InvalidParamsError) as info:
        engine.submit(GenerationRequest(messages=({"role": "user", "content": "hi"},),
                                        options=SamplingOptions(min_new_tokens=4),
                                        constraint=OutputConstraint("json_object")))
    assert info.value.param == "min_new_tokens"
