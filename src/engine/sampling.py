"""Sampling configuration for transformers' generate(), plus OpenAI-style penalties."""

from __future__ import annotations

import secrets
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from src.engine.types import SamplingOptions


class PresenceFrequencyPenalty(LogitsProcessor):
    """OpenAI's penalties over generated tokens: presence once, frequency per occurrence."""

    def __init__(self, prompt_len: int, presence: float, frequency: float) -> None:
        self.prompt_len = prompt_len
        self.presence = presence
        self.frequency = frequency

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_len :]
        if generated.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores)
        counts.scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
        penalty = self.frequency * counts + self.presence * (counts > 0).to(scores.dtype)
        return scores - penalty  # type: ignore[return-value]


class LogitBias(LogitsProcessor):
    """OpenAI's logit_bias: a fixed bias added to the logits of chosen token ids."""

    def __init__(self, bias: tuple[tuple[int, float], ...]) -> None:
        self.ids = torch.tensor([token for token, _ in bias], dtype=torch.long)
        self.values = torch.tensor([value for _, value in bias])

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        known = self.ids < scores.shape[-1]  # ids past the vocabulary are ignored
        ids = self.ids[known].to(scores.device)
        values = self.values[known].to(device=scores.device, dtype=scores.dtype)
        scores = scores.clone()  # type: ignore[assignment]
        scores[:, ids] += values
        return scores


class LogprobRecorder(LogitsProcessor):
    """Keeps the log-softmax of the last step's scores (after penalties and bias, before
    temperature and top-k/top-p), for the token the sampler then picks."""

    def __init__(self) -> None:
        self.last: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.last = torch.log_softmax(scores[0].float(), dim=-1)
        return scores


def generation_config(
    options: SamplingOptions, max_new_tokens: int, pad_token_id: int, eos_ids: list[int]
) -> GenerationConfig:
    """A GenerationConfig for one request; greedy when temperature is 0."""
    kwargs: dict[str, Any] = dict(
        max_new_tokens=max_new_tokens,
        min_new_tokens=min(options.min_new_tokens, max_new_tokens) or None,
        pad_token_id=pad_token_id,
        eos_token_id=eos_ids,
        repetition_penalty=options.repetition_penalty if options.repetition_penalty != 1.0 else None,
        max_time=options.max_time,
    )
    if options.sampling:
        kwargs.update(
            do_sample=True,
            temperature=options.temperature,
            top_p=options.top_p if options.top_p < 1.0 else None,
            top_k=options.top_k or None,
        )
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return GenerationConfig(**kwargs)


def logits_processors(
    options: SamplingOptions, prompt_len: int, recorder: LogprobRecorder | None = None
) -> LogitsProcessorList:
    """Processors that GenerationConfig has no field for; ``recorder`` goes last."""
    processors = LogitsProcessorList()
    if options.logit_bias:
        processors.append(LogitBias(options.logit_bias))
    if options.presence_penalty or options.frequency_penalty:
        processors.append(
            PresenceFrequencyPenalty(prompt_len, options.presence_penalty, options.frequency_penalty)
        )
    if recorder is not None:
        processors.append(recorder)
    return processors


def seed_generator(options: SamplingOptions) -> None:
    """Seed torch for this request: a fixed seed reproduces the output, 0 picks a random one."""
    torch.manual_seed(options.seed or secrets.randbits(63))
