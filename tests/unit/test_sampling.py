"""Per-sequence sampling: penalties, bias, min_new_tokens, processors, seeds, top-k/top-p."""

from __future__ import annotations

import torch

from src.engine.sampling import SequenceSampler
from src.engine.types import SamplingOptions

VOCAB = 6


def sampler(**options) -> SequenceSampler:
    processors = options.pop("processors", ())
    prompt = options.pop("prompt", (5, 5))
    return SequenceSampler(SamplingOptions(**options), prompt, eos_ids=[0], vocab_size=VOCAB,
                           processors=processors)


def test_presence_and_frequency_penalties_count_only_generated_tokens():
    s = sampler(presence_penalty=0.5, frequency_penalty=1.0)
    for token in (1, 1, 3):
        s.record(token)
    out = s.process(torch.zeros(VOCAB))
    assert out[1].item() == -(2 * 1.0 + 0.5)
    assert out[3].item() == -(1.0 + 0.5)
    assert out[5].item() == 0.0  # a prompt token is not penalised


def test_repetition_penalty_covers_prompt_and_generated_tokens_like_transformers():
    s = sampler(repetition_penalty=2.0, prompt=(4,))
    s.record(2)
    out = s.process(torch.tensor([1.0, 1.0, 4.0, 1.0, -4.0, 1.0]))
    assert out.tolist() == [1.0, 1.0, 2.0, 1.0, -8.0, 1.0]  # positive / penalty, negative * penalty


def test_logit_bias_adds_bias_ignores_unknown_ids_and_keeps_the_input():
    scores = torch.zeros(VOCAB)
    out = sampler(logit_bias=((1, 100.0), (3, -100.0), (99, 5.0))).process(scores)
    assert out.tolist() == [0.0, 100.0, 0.0, -100.0, 0.0, 0.0]
    assert scores.sum() == 0  # the input is not modified in place


def test_min_new_tokens_suppresses_end_of_turn_until_reached():
    s = sampler(min_new_tokens=2)
    logits = torch.tensor([9.0, 1.0, 0.0, 0.0, 0.0, 0.0])  # the end token (0) is the best
    assert s.choose(s.process(logits)) == 1
    s.record(1)
    assert s.choose(s.process(logits)) == 1
    s.record(1)
    assert s.choose(s.process(logits)) == 0  # two generated: the end may come


def test_processors_run_in_order_with_the_generated_ids():
    seen = []

    def ban_last(ids, logits):
        seen.append(list(ids))
        logits = logits.clone()
        if ids:
            logits[ids[-1]] = -float("inf")
        return logits

    s = sampler(processors=(ban_last,))
    logits = torch.tensor([0.0, 0.0, 5.0, 1.0, 0.0, 0.0])
    assert s.choose(s.process(logits)) == 2
    s.record(2)
    assert s.choose(s.process(logits)) == 3  # 2 was banned by the processor
    assert seen == [[], [2]]


def test_temperature_zero_is_greedy_and_do_sample_false_forces_it():
    assert sampler(temperature=0.0, top_k=40).greedy
    assert sampler(temperature=0.7, do_sample=False).greedy
    assert not sampler(temperature=0.7).greedy
    assert SamplingOptions(temperature=0.7, do_sample=False).sampling is False


def test_a_seed_reproduces_draws_and_top_k_limits_them():
    logits = torch.linspace(0, 1, VOCAB)
    draws = []
    for _ in range(2):
        s = sampler(temperature=5.0, seed=42)
        draws.append([s.choose(logits) for _ in range(30)])
    assert draws[0] == draws[1] and len(set(draws[0])) > 2
    top2 = sampler(temperature=5.0, top_k=2, seed=1)
    assert {top2.choose(logits) for _ in range(50)} <= {VOCAB - 1, VOCAB - 2}


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    logits = torch.log(torch.tensor([0.05, 0.05, 0.1, 0.2, 0.6, 1e-9]))
    s = sampler(temperature=1.0, top_p=0.7, seed=3)
    assert {s.choose(logits) for _ in range(100)} == {4, 3}  # 0.6 + 0.2 reach 0.7


def test_min_p_keeps_only_tokens_near_the_most_likely_one():
    logits = torch.log(torch.tensor([0.05, 0.5, 0.3, 0.1, 0.04, 0.01]))
    picks = {sampler(temperature=1.0, min_p=0.5, seed=seed).choose(logits) for seed in range(1, 60)}
    assert picks == {1, 2}  # 0.3 >= 0.5 * 0.5; 0.1 is not
    assert {sampler(temperature=1.0, min_p=1.0, seed=seed).choose(logits) for seed in range(1, 20)} == {1}
    assert len({sampler(temperature=1.0, seed=seed).choose(logits) for seed in range(1, 60)}) > 2
