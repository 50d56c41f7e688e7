"""Typed requests and events that cross the engine's boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class SamplingOptions:
    """How to pick tokens. temperature 0 (or do_sample False) means greedy decoding."""

    max_new_tokens: int = 256
    min_new_tokens: int = 0
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int = 0
    logit_bias: tuple[tuple[int, float], ...] = ()
    logprobs: int | None = None  # None: off; k: each token's log prob and the k most likely
    do_sample: bool | None = None
    stop: tuple[str, ...] = ()
    max_time: float | None = None

    @property
    def sampling(self) -> bool:
        if self.do_sample is not None:
            return self.do_sample and self.temperature > 0
        return self.temperature > 0


@dataclass(frozen=True)
class GenerationRequest:
    """Token ids of a rendered prompt and the options to continue it with."""

    prompt_ids: tuple[int, ...]
    options: SamplingOptions = field(default_factory=SamplingOptions)


@dataclass(frozen=True)
class TokenEvent:
    """One step of a generation: new text, tokens so far, and why it ended (last event only).

    The first event of every request has empty text and no completion tokens: the engine
    has taken the request off its queue and started it, so no queue timeout can follow.
    """

    delta: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason | None = None
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token's text, log probability and the most likely alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()
