"""Sampling settings and the OpenAI-style penalty processor."""

from __future__ import annotations

import torch

from src.engine.sampling import PresenceFrequencyPenalty, generation_config
from src.engine.types import SamplingOptions


def test_penalty_math_counts_only_generated_tokens():
    prompt_len = 2
    ids = torch.tensor([[5, 5, 1, 1, 3]])  # prompt 5 5, generated 1 1 3
    scores = torch.zeros(1, 6)
    out = PresenceFrequencyPenalty(prompt_len, presence=0.5, frequency=1.0)(ids, scores)
    assert out[0, 1].item() == -(2 * 1.0 + 0.5)
    assert out[0, 3].item() == -(1.0 + 0.5)
    assert out[0, 5].item() == 0.0  # a prompt token is not penalised


def test_temperature_zero_is_greedy():
    config = generation_config(SamplingOptions(temperature=0.0, top_k=40), 10, 0, [2])
    assert config.do_sample is False
    config = generation_config(SamplingOptions(temperature=0.7, top_k=40, top_p=0.9), 10, 0, [2])
    assert config.do_sample and config.temperature == 0.7 and config.top_k == 40 and config.top_p == 0.9


def test_do_sample_false_forces_greedy():
    assert SamplingOptions(temperature=0.7, do_sample=False).sampling is False
    assert SamplingOptions(temperature=0.7).sampling is True
