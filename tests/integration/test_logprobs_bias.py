"""logprobs, top_logprobs and logit_bias through evaluate() on the real tiny model."""

from __future__ import annotations

import math

from src.params import EvalParams

QUESTION = "Say hello."


def run(evaluator, **kwargs):
    return list(evaluator.evaluate(EvalParams(instruction=QUESTION, temperature=0,
                                              max_new_tokens=6, **kwargs)))


def test_logprobs_cover_every_token_streamed_or_not(evaluator):
    for stream in (True, False):
        chunks = run(evaluator, logprobs=True, top_logprobs=3, stream_output=stream)
        entries = [e for c in chunks for e in c.logprobs]
        assert "".join(e.token for e in entries) == chunks[-1].response
        assert len(entries) <= chunks[-1].completion_tokens  # an end-of-turn token has none
        for entry in entries:
            assert entry.logprob <= 0 and len(entry.top) == 3
            # greedy: the chosen token is the most likely one
            assert math.isclose(entry.logprob, entry.top[0][1], rel_tol=1e-5)


def tokens(chunks):
    return [e.token for c in chunks for e in c.logprobs]


def test_no_logprobs_unless_asked(evaluator):
    assert all(c.logprobs == [] for c in run(evaluator))


def test_logit_bias_forces_and_bans(evaluator):
    free = run(evaluator, logprobs=True)
    first = tokens(free)[0]
    forced = tokens(run(evaluator, logprobs=True, logit_bias={1001: 100.0}))
    assert len(set(forced)) == 1 and forced[0] != first
    token_id = evaluator.registry.default.tokenize(first)[0]
    banned = run(evaluator, logprobs=True, logit_bias={token_id: -100.0})
    assert tokens(banned)[0] != first


def test_logprobs_leave_out_the_end_of_turn_token(evaluator):
    chunks = list(evaluator.evaluate(EvalParams(instruction="What is the capital of France?",
                                                temperature=0, max_new_tokens=40, logprobs=True)))
    assert chunks[-1].finish_reason == "stop"
    assert "".join(e.token for c in chunks for e in c.logprobs) == chunks[-1].response
