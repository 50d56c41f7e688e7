"""The real tiny model through evaluate(): determinism, seeds, stops, limits, cancellation.

The batching scheduler itself (order, fairness, queueing, batch invariance) is tested in
test_batching.py."""

from __future__ import annotations

import dataclasses

import pytest

from src.engine.transformers_backend import TransformersBackend
from src.engine.types import GenerationRequest
from src.errors import ContextLengthError
from src.evaluate import EvalChunk
from src.params import EvalParams
from tests.conftest import wait_idle

QUESTION = "Write two sentences about the sea."


def run(evaluator, **kwargs) -> list[EvalChunk]:
    kwargs.setdefault("instruction", QUESTION)
    kwargs.setdefault("max_new_tokens", 40)
    return list(evaluator.evaluate(EvalParams(**kwargs)))


def answer(evaluator, **kwargs) -> str:
    return run(evaluator, **kwargs)[-1].response


def test_greedy_is_deterministic(evaluator):
    first = answer(evaluator, temperature=0)
    assert first.strip()
    assert answer(evaluator, temperature=0) == first


def test_fixed_seed_reproduces_sampling(evaluator):
    a = answer(evaluator, temperature=1.0, top_p=1.0, top_k=0, seed=1234)
    assert answer(evaluator, temperature=1.0, top_p=1.0, top_k=0, seed=1234) == a
    others = {answer(evaluator, temperature=1.0, top_p=1.0, top_k=0, seed=s) for s in (1, 2, 3)}
    assert len(others | {a}) > 1  # different seeds sample different text


def test_stop_string_ends_the_answer_and_is_excluded(evaluator):
    full = answer(evaluator, temperature=0)
    words = full.split()
    assert len(words) > 6
    stop = " " + words[4]
    cut = full.index(stop)
    chunks = run(evaluator, temperature=0, stop=[stop])
    assert chunks[-1].response == full[:cut]
    assert chunks[-1].finish_reason == "stop"
    assert stop not in "".join(c.delta for c in chunks)


def test_max_new_tokens_is_respected(evaluator):
    last = run(evaluator, temperature=0, max_new_tokens=7)[-1]
    assert last.completion_tokens == 7 and last.finish_reason == "length"


def test_min_new_tokens_suppresses_an_early_end(evaluator):
    short = run(evaluator, instruction="Say just: yes", temperature=0, max_new_tokens=60)[-1]
    assert short.finish_reason == "stop"
    n = short.completion_tokens + 10
    forced = run(evaluator, instruction="Say just: yes", temperature=0, min_new_tokens=n, max_new_tokens=60)
    assert forced[-1].completion_tokens >= n


def test_max_time_stops_generation(evaluator):
    last = run(evaluator, temperature=0, max_new_tokens=2000, min_new_tokens=2000, max_time=0.5)[-1]
    assert last.finish_reason == "length" and 0 < last.completion_tokens < 2000


def test_streamed_deltas_join_to_the_response_and_contract_holds(evaluator):
    chunks = run(evaluator, temperature=0, max_new_tokens=30)
    assert len(chunks) > 2
    assert "".join(c.delta for c in chunks) == chunks[-1].response
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert chunks[-1].finish_reason in ("stop", "length")
    counts = [c.completion_tokens for c in chunks]
    assert counts == sorted(counts) and chunks[-1].completion_tokens <= 30
    assert all(c.prompt_tokens == chunks[0].prompt_tokens > 0 for c in chunks)
    assert all(c.sources == [] for c in chunks)


def test_the_first_streamed_chunk_says_the_answer_started(evaluator):
    """Empty text and no completion tokens yet: the engine took the request off its queue."""
    first = run(evaluator, temperature=0, max_new_tokens=5)[0]
    assert (first.delta, first.response, first.completion_tokens, first.finish_reason) == ("", "", 0, None)
    assert first.prompt_tokens > 0


def test_stream_output_false_yields_one_final_chunk(evaluator):
    chunks = run(evaluator, temperature=0, stream_output=False)
    assert len(chunks) == 1 and chunks[0].delta == chunks[0].response
    assert chunks[0].response == answer(evaluator, temperature=0)


def test_frequency_penalty_discourages_repeated_tokens(evaluator):
    prompt = "List the numbers from 1 to 30, separated by commas."
    plain = answer(evaluator, instruction=prompt, temperature=0, repetition_penalty=1.0, max_new_tokens=60)
    penalised = answer(
        evaluator, instruction=prompt, temperature=0, repetition_penalty=1.0, max_new_tokens=60,
        frequency_penalty=2.0,
    )
    assert penalised.count(",") < plain.count(",")


def test_presence_penalty_changes_the_answer(evaluator):
    plain = answer(evaluator, temperature=0, repetition_penalty=1.0, max_new_tokens=60)
    penalised = answer(
        evaluator, temperature=0, repetition_penalty=1.0, max_new_tokens=60, presence_penalty=2.0
    )
    assert penalised != plain


def test_text_context_list_reaches_the_prompt(evaluator):
    without = run(evaluator, instruction="What is the code?", temperature=0)[-1]
    docs = ["The secret code is PINEAPPLE-42."]
    with_docs = run(evaluator, instruction="What is the code?", text_context_list=docs, temperature=0)
    assert with_docs[-1].prompt_tokens > without.prompt_tokens + 5
    assert "PINEAPPLE" in with_docs[-1].response


def test_chat_conversation_changes_the_prompt(evaluator):
    alone = run(evaluator, instruction="And his age?", max_new_tokens=5)[-1]
    history = [["My friend Tom is 31 years old.", "Nice to know!"]]
    chat = run(evaluator, instruction="And his age?", chat_conversation=history, max_new_tokens=5)[-1]
    assert chat.prompt_tokens > alone.prompt_tokens


def test_closing_the_iterator_cancels_within_a_step(evaluator, engine):
    chunks = evaluator.evaluate(EvalParams(instruction=QUESTION, max_new_tokens=500, min_new_tokens=500))
    next(chunks)
    next(chunks)
    assert engine.active_requests == 1
    chunks.close()
    assert wait_idle(engine) == 0


def test_prompt_longer_than_the_context_window_is_refused(engine):
    small = TransformersBackend(dataclasses.replace(engine.loaded, max_seq_len=16))
    try:
        request = GenerationRequest(prompt="word " * 40)
        with pytest.raises(ContextLengthError, match="maximum context length is 16 tokens"):
            small.submit(request)
        assert small.active_requests == 0
    finally:
        small.shutdown()
