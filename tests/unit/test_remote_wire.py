"""The remote backend's translation: --inference_server strings, request bodies, stream chunks.

End to end against real servers: tests/remote/."""

import json

import pytest

from src.engine.llamacpp_backend import LlamaCppDialect
from src.engine.remote_spec import parse_inference_server
from src.engine.remote_wire import ChunkReader, WireDialect, whole_call
from src.engine.types import GenerationRequest, OutputConstraint, SamplingOptions
from src.errors import InvalidParamsError, UnsupportedFeatureError

MESSAGES = ({"role": "user", "content": "hi"},)


@pytest.mark.parametrize("value, kind, url, key", [
    ("vllm:10.0.0.5:8000", "vllm", "http://10.0.0.5:8000/v1", "EMPTY"),
    ("vllm:10.0.0.5:8000:sk-1", "vllm", "http://10.0.0.5:8000/v1", "sk-1"),
    ("vllm_chat:http://gpu:5000/v1", "vllm_chat", "http://gpu:5000/v1", "EMPTY"),
    ("vllm_chat:https://gpu.example.com/v1:KEY", "vllm_chat", "https://gpu.example.com/v1", "KEY"),
    ("openai:http://localhost:5000", "openai", "http://localhost:5000/v1", "EMPTY"),
    ("http://127.0.0.1:5000/v1", "openai_chat", "http://127.0.0.1:5000/v1", "EMPTY"),
    ("openai_chat:http://h:1/v1:None", "openai_chat", "http://h:1/v1", "EMPTY"),
])
def test_inference_server_forms(value, kind, url, key):
    spec = parse_inference_server(value)
    assert (spec.kind, spec.base_url, spec.api_key) == (kind, url, key)
    assert "KEY" not in str(spec) and "sk-1" not in str(spec)  # logs never show the key


def test_api_key_from_flag_and_environment(monkeypatch):
    assert parse_inference_server("vllm:h:1", api_key="flag-key").api_key == "flag-key"
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    assert parse_inference_server("openai_chat:http://h:1/v1").api_key == "env-key"
    assert parse_inference_server("vllm_chat:http://h:1/v1").api_key == "EMPTY"


@pytest.mark.parametrize("value", ["vllm:", "vllm:host", "vllm:host:port", "ftp://x"])
def test_bad_inference_server_is_refused(value):
    with pytest.raises(InvalidParamsError):
        parse_inference_server(value)


def request_body(request, spec, model):
    """The body of ``request`` in the dialect of ``spec`` (llama.cpp's for the llamacpp kind)."""
    dialect = LlamaCppDialect(spec) if spec.kind == "llamacpp" else WireDialect(spec)
    return dialect.request_body(request, model)


def test_only_the_options_the_caller_set_are_forwarded():
    options = SamplingOptions(max_new_tokens=9, temperature=0.1, top_k=40, repetition_penalty=1.07, seed=3)
    spec = parse_inference_server("vllm_chat:http://h:1/v1")
    path, body = request_body(GenerationRequest(messages=MESSAGES, options=options,
                                                explicit=frozenset({"seed"})), spec, "m")
    assert path == "/chat/completions"
    assert body["max_tokens"] == 9 and body["seed"] == 3
    assert not {"temperature", "top_k", "repetition_penalty"} & set(body)
    _, every = request_body(GenerationRequest(messages=MESSAGES, options=options), spec, "m")
    assert (every["temperature"], every["top_k"], every["repetition_penalty"]) == (0.1, 40, 1.07)


def test_greedy_is_temperature_zero_and_llamacpp_names():
    options = SamplingOptions(temperature=0.7, do_sample=False, repetition_penalty=1.2,
                              logit_bias=((5, -100.0),), stop=("x",), logprobs=2)
    spec = parse_inference_server("vllm_chat:http://h:1/v1")
    llama = type(spec)("llamacpp", "http://127.0.0.1:9/v1")
    _, body = request_body(GenerationRequest(messages=MESSAGES, options=options), llama, "m")
    assert body["temperature"] == 0.0 and body["repeat_penalty"] == 1.2 and "repetition_penalty" not in body
    assert body["logit_bias"] == {"5": -100.0}
    assert "stop" not in body  # the llama.cpp backend cuts at stop strings itself, to name the match
    assert request_body(GenerationRequest(messages=MESSAGES, options=options), spec, "m")[1]["stop"] == ["x"]
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    _, minimum = request_body(GenerationRequest(messages=MESSAGES, options=SamplingOptions(min_new_tokens=3)),
                              llama, "m")
    assert "min_tokens" not in minimum  # the backend runs it as ignore_eos phases


def test_constraints_in_each_dialect():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    vllm = parse_inference_server("vllm_chat:http://h:1/v1")
    other = parse_inference_server("openai_chat:http://h:1/v1")
    llama = type(vllm)("llamacpp", "http://127.0.0.1:9/v1")

    def body(spec, kind, value):
        return request_body(GenerationRequest(messages=MESSAGES, constraint=OutputConstraint(kind, value)),
                            spec, "m")[1]

    assert body(vllm, "json_schema", schema)["structured_outputs"] == {"json": schema}
    assert body(vllm, "choice", ("a", "b"))["structured_outputs"] == {"choice": ["a", "b"]}
    assert body(other, "json_schema", schema)["response_format"]["json_schema"]["schema"] == schema
    assert body(other, "regex", "[0-9]+")["guided_regex"] == "[0-9]+"
    assert body(llama, "choice", ("yes", "no"))["grammar"] == 'root ::= "yes" | "no"'
    assert body(llama, "regex", "[0-9]+")["grammar"] == 'root ::= ([0-9])+'
    with pytest.raises(InvalidParamsError) as refused:
        body(llama, "regex", r"(a)\1")
    assert refused.value.param == "guided_regex"


def test_messages_on_a_text_completion_server_and_prompt_ids():
    spec = parse_inference_server("openai:http://h:1/v1")
    path, body = request_body(GenerationRequest(messages=({"role": "system", "content": "Be brief."}, *MESSAGES)),
                              spec, "m")
    assert path == "/completions" and body["prompt"] == "Be brief.\nhi"
    _, ids = request_body(GenerationRequest(prompt_ids=(1, 2, 3)), spec, "m")
    assert ids["prompt"] == [1, 2, 3]
    with pytest.raises(UnsupportedFeatureError):
        request_body(GenerationRequest(messages=MESSAGES, tools=({"type": "function", "function": {"name": "f"}},)),
                     spec, "m")


def test_tool_call_deltas_stay_typed_with_the_remote_ids():
    reader = ChunkReader(chat=True)
    chunks = [
        {"choices": [{"delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "call_remote_7", "type": "function",
                                                "function": {"name": "get_weather"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 1, "id": "call_remote_8",
                                                "function": {"name": "now", "arguments": ""}}]}}]},
        {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 12}},
    ]
    reads = [reader.read(c) for c in chunks]
    assert "".join(r[0] for r in reads) == ""  # nothing became text
    deltas = [d for r in reads for d in r[2]]
    assert [(d.index, d.id, d.name) for d in deltas if d.name] == [(0, "call_remote_7", "get_weather"),
                                                                  (1, "call_remote_8", "now")]
    assert "".join(d.arguments for d in deltas if d.index == 0) == '{"city": "Paris"}'
    assert reads[-2][3] == "tool_calls" and (reader.prompt_tokens, reader.completion_tokens) == (7, 12)


def test_a_held_call_becomes_one_typed_call():
    """llama.cpp answers a required call as its JSON (a json_schema constraint): held, then one call."""
    assert whole_call('{"name": "f", "argu') is None  # cut by max_tokens
    reader = ChunkReader(chat=True, wrap_call=True)
    assert reader.read({"choices": [{"delta": {"content": '{"name": "f", '}}]})[:3] == ("", [], [])
    text, _, calls, finish = reader.read({"choices": [{"delta": {"content": '"arguments": {"x":1}}'},
                                                       "finish_reason": "stop"}]})
    assert finish == "stop" and text == ""
    assert [(c.index, c.name, json.loads(c.arguments)) for c in calls] == [(0, "f", {"x": 1})]
    assert calls[0].id and calls[0].id.startswith("call_")
    cut = ChunkReader(chat=True, wrap_call=True)
    assert cut.read({"choices": [{"delta": {"content": '{"name": "f"'}, "finish_reason": "length"}]})[0] == \
        '{"name": "f"'


def test_completion_logprobs_and_counts_without_usage():
    reader = ChunkReader(chat=False)
    text, logprobs, _, _ = reader.read({"choices": [{"text": "Hi", "logprobs": {
        "tokens": ["Hi"], "token_logprobs": [-0.5], "top_logprobs": [{"Hi": -0.5, "Hello": -1.5}]}}]})
    assert text == "Hi" and logprobs[0].logprob == -0.5 and dict(logprobs[0].top)["Hello"] == -1.5
    assert reader.completion_tokens == 1


def test_vllms_stop_reason_names_the_matched_stop_string():
    reader = ChunkReader(chat=True)
    reader.read({"choices": [{"delta": {"content": "Hi"}}]})
    reader.read({"choices": [{"delta": {}, "finish_reason": "stop", "stop_reason": "END"}]})
    assert reader.stop_sequence == "END"
    eos = ChunkReader(chat=True)
    eos.read({"choices": [{"delta": {}, "finish_reason": "stop", "stop_reason": 2}]})  # a stop token id
    assert eos.stop_sequence is None


def test_min_p_and_named_samplers_are_forwarded_and_min_p_zero_is_sent():
    llama = type(parse_inference_server("vllm_chat:http://h:1/v1"))("llamacpp", "http://127.0.0.1:9/v1")
    options = SamplingOptions(temperature=0.7, min_p=0.2, samplers=(("mirostat", 2), ("typical_p", 0.9)))
    _, body = request_body(GenerationRequest(messages=MESSAGES, options=options), llama, "m")
    assert body["min_p"] == 0.2 and body["typical_p"] == 0.9 and body["mirostat"] == 2
    _, off = request_body(GenerationRequest(messages=MESSAGES, options=SamplingOptions(min_p=0.0)), llama, "m")
    assert off["min_p"] == 0.0  # an explicit 0 turns llama.cpp's default 0.05 off
    _, unset = request_body(GenerationRequest(messages=MESSAGES, options=SamplingOptions()), llama, "m")
    assert "min_p" not in unset
