"""Context limits and samplers on the wire: generate.py on each local backend (llama.cpp, the
default, first), the real tiny model, the official SDK.

- max_tokens beyond what the context leaves after the prompt is a 400 naming both numbers;
  without max_tokens the default is cut to fit;
- one answer may take the model's whole context (8,192 tokens) while the other slots stay:
  a prompt of ~8,000 tokens, and Open WebUI's first chat with 36 tool specs, are answered;
- min_p is honoured, repeat_penalty is repetition_penalty, a sampler the backend lacks is a
  400 unsupported_parameter naming it.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.open_webui import open_webui_chat
from tests.server import RemoteServer

HELLO = [{"role": "user", "content": "Say hello."}]
NOTE = "Note {}: the river passes the mill at dawn."


@pytest.fixture(scope="module", params=["llamacpp", "transformers"])
def server(request, tmp_path_factory):
    with RemoteServer(tmp_path_factory.mktemp("limits"), "--openai_workers=1",
                      f"--llm_backend={request.param}") as srv:
        yield srv


@pytest.fixture(scope="module")
def backend(server) -> str:
    return str(httpx.get(server.url + "/health").json()["backends"][0]["backend"])


@pytest.fixture(scope="module")
def client(server):
    return server.client()


@pytest.fixture(scope="module")
def model(server):
    return server.model()


@pytest.fixture(scope="module")
def window(server) -> int:
    return int(httpx.get(server.base_url + "/models").json()["data"][0]["max_model_len"])


def error_body(info: pytest.ExceptionInfo) -> dict:
    return info.value.body  # type: ignore[no-any-return]


def long_text(notes: int) -> str:
    return " ".join(NOTE.format(i) for i in range(notes))


# --- max_tokens and the context window -------------------------------------------------------
def test_the_default_model_serves_its_whole_context(window):
    assert window == 8192  # SmolLM2-135M's own, not a slot's share of the cache


def test_max_tokens_that_do_not_fit_are_a_400_naming_both_numbers(client, model, window):
    prompt = client.chat.completions.create(model=model, messages=HELLO, max_tokens=1, temperature=0)
    used = prompt.usage.prompt_tokens
    fits = client.chat.completions.create(model=model, messages=HELLO, max_tokens=window - used, temperature=0)
    assert fits.choices[0].message.content  # exactly what the context leaves is accepted
    for field in ("max_tokens", "max_completion_tokens"):
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model=model, messages=HELLO, temperature=0,
                                           **{field: window - used + 1})
        body = error_body(info)
        assert body["code"] == "context_length_exceeded" and body["type"] == "invalid_request_error"
        assert f"maximum context length is {window} tokens" in body["message"]
        assert f"you requested {window + 1} tokens ({used} in the messages, {window - used + 1} in the " \
               "completion)" in body["message"]


def test_a_completion_whose_max_tokens_do_not_fit_is_a_400(client, model, window):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=model, prompt="Once upon a time", max_tokens=window, temperature=0)
    assert error_body(info)["code"] == "context_length_exceeded"
    assert f"{window} in the completion" in error_body(info)["message"]


@pytest.mark.timeout(900)  # ~8,000 prompt tokens on 2 busy cores (16-100 tokens/s of prefill seen)
def test_a_long_prompt_without_max_tokens_is_answered_within_the_window(client, model, window):
    """~8,000 prompt tokens: more than a slot's share of a 2 GiB cache split 16 ways (5,632; on
    llama.cpp each slot now has its whole window), and the default 256 answer tokens would not
    fit after it: they are cut to what is left."""
    answer = client.chat.completions.create(
        model=model, temperature=0,
        messages=[{"role": "user", "content": long_text(575) + "\nWhat passes the mill?"}])
    used = answer.usage.prompt_tokens
    assert 7_900 <= used < window and used + 256 > window
    assert answer.usage.completion_tokens <= window - used
    assert answer.choices[0].finish_reason in ("stop", "length")


@pytest.mark.timeout(900)
def test_open_webuis_first_chat_with_36_tools_is_answered(server, model):
    body = open_webui_chat(model)
    assert len(body["tools"]) == 36
    with httpx.stream("POST", server.base_url + "/chat/completions", json=body, timeout=600,
                      headers={"Authorization": "Bearer EMPTY"}) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    usage = chunks[-1]["usage"]
    assert 6_000 <= usage["prompt_tokens"] <= 7_500  # the tool specs are in the prompt
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] in ("stop", "length", "tool_calls")


# --- samplers --------------------------------------------------------------------------------
def test_min_p_one_keeps_only_the_most_likely_token(client, model):
    ask = {"model": model, "messages": [{"role": "user", "content": "Name three colours."}], "max_tokens": 12}
    greedy = client.chat.completions.create(**ask, temperature=0).choices[0].message.content
    for seed in (1, 2, 3):
        sampled = client.chat.completions.create(**ask, temperature=1.5, seed=seed, extra_body={"min_p": 1.0})
        assert sampled.choices[0].message.content == greedy


def test_repeat_penalty_is_repetition_penalty(client, model):
    ask = {"model": model, "messages": [{"role": "user", "content": "Repeat: la la la la la"}],
           "max_tokens": 16, "temperature": 0}
    alias = client.chat.completions.create(**ask, extra_body={"repeat_penalty": 1.6})
    named = client.chat.completions.create(**ask, extra_body={"repetition_penalty": 1.6})
    assert alias.choices[0].message.content == named.choices[0].message.content


def test_a_sampler_the_backend_lacks_is_a_400_naming_it(backend, client, model):
    ask = {"model": model, "messages": HELLO, "max_tokens": 4, "temperature": 0.7, "seed": 1}
    neutral = client.chat.completions.create(**ask, extra_body={"mirostat": 0, "typical_p": 1.0})
    assert neutral.choices[0].message.content  # a neutral value asks for nothing
    if backend == "llama.cpp":  # it has typical_p and mirostat, not tfs_z (removed from llama.cpp)
        taken = client.chat.completions.create(**ask, extra_body={"typical_p": 0.9, "mirostat": 2})
        assert taken.choices[0].message.content
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(**ask, extra_body={"tfs_z": 0.9})
        assert error_body(info)["code"] == "unsupported_parameter" and error_body(info)["param"] == "tfs_z"
        assert "llama.cpp backend" in error_body(info)["message"]
        return
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**ask, extra_body={"typical_p": 0.9})
    body = error_body(info)
    assert body["code"] == "unsupported_parameter" and body["param"] == "typical_p"
    assert "transformers backend" in body["message"] and "typical_p" in body["message"]
