"""Per-sequence sampling: each sequence in a batch picks its tokens with its own options and state.

:class:`SequenceSampler` turns one sequence's logits (a 1-D tensor over the vocabulary)
into its next token, in transformers' order: repetition penalty, min_new_tokens (end of
turn suppressed), logit_bias, presence/frequency penalties, the request's own logits
processors; then the log probs are recorded (before temperature, as OpenAI reports them);
then temperature, top-k, top-p, min-p and a draw from the sequence's own ``torch.Generator``
(greedy decoding takes the argmax). Nothing here is shared between sequences, so a seed
reproduces a sampled answer whatever else runs in the batch.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import torch

from src.engine.types import SamplingOptions, SequenceProcessor


class SequenceSampler:
    """The sampling state of one sequence: options, seed, token counts, processors."""

    def __init__(
        self,
        options: SamplingOptions,
        prompt_ids: Sequence[int],
        eos_ids: Sequence[int],
        vocab_size: int,
        device: str = "cpu",
        processors: Sequence[SequenceProcessor] = (),
    ) -> None:
        self.options = options
        self.eos = torch.tensor(list(eos_ids), dtype=torch.long, device=device)
        self.processors = tuple(processors)
        self.generated: list[int] = []
        self.greedy = not options.sampling
        self.generator: torch.Generator | None = None
        if not self.greedy:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(options.seed or secrets.randbits(63))
        bias = [(t, b) for t, b in options.logit_bias if 0 <= t < vocab_size]
        self.bias_ids = torch.tensor([t for t, _ in bias], dtype=torch.long, device=device)
        self.bias_values = torch.tensor([b for _, b in bias], dtype=torch.float32, device=device)
        self.penalise_counts = bool(options.presence_penalty or options.frequency_penalty)
        self.counts = torch.zeros(vocab_size, device=device) if self.penalise_counts else None
        self.repetition = options.repetition_penalty if options.repetition_penalty != 1.0 else None
        self.seen: torch.Tensor | None = None
        if self.repetition is not None:
            self.seen = torch.zeros(vocab_size, dtype=torch.bool, device=device)
            known = [i for i in prompt_ids if 0 <= i < vocab_size]
            if known:
                self.seen[torch.tensor(known, dtype=torch.long, device=device)] = True
        self.plain = not (self.repetition or self.penalise_counts or bias or self.processors
                          or options.min_new_tokens or options.logprobs is not None)

    def process(self, logits: torch.Tensor) -> torch.Tensor:
        """The logits after penalties, bias and processors (the distribution log probs report)."""
        if self.plain:
            return logits
        logits = logits.clone()
        if self.seen is not None and self.repetition is not None:
            picked = logits[self.seen]
            logits[self.seen] = torch.where(picked < 0, picked * self.repetition, picked / self.repetition)
        if len(self.generated) < self.options.min_new_tokens and self.eos.numel():
            logits[self.eos] = -float("inf")
        if self.bias_ids.numel():
            logits[self.bias_ids] += self.bias_values
        if self.counts is not None:
            logits -= self.options.frequency_penalty * self.counts
            logits -= self.options.presence_penalty * (self.counts > 0).to(logits.dtype)
        for processor in self.processors:
            logits = processor(self.generated, logits)
        return logits

    def choose(self, logits: torch.Tensor) -> int:
        """The next token from processed logits: argmax, or a draw with the sequence's seed."""
        if self.greedy:
            return int(torch.argmax(logits))
        options = self.options
        scores = logits / options.temperature
        ids: torch.Tensor | None = None
        if options.top_k and options.top_k < scores.numel():
            scores, ids = torch.topk(scores, options.top_k)
        if options.top_p < 1.0:
            scores, order = torch.sort(scores, descending=True)
            ids = order if ids is None else ids[order]
            probs = torch.softmax(scores, dim=-1)
            drop = probs.cumsum(-1) - probs > options.top_p  # keep the smallest set reaching top_p
            scores = scores.masked_fill(drop, -float("inf"))
        probs = torch.softmax(scores, dim=-1)
        if options.min_p:  # keep the tokens at least min_p times as likely as the most likely one
            probs = probs.masked_fill(probs < options.min_p * probs.max(), 0.0)
        pick = int(torch.multinomial(probs, 1, generator=self.generator))
        return int(ids[pick]) if ids is not None else pick

    def record(self, token: int) -> None:
        """Count ``token`` as generated (penalties and min_new_tokens read this)."""
        self.generated.append(token)
        if self.counts is not None:
            self.counts[token] += 1
        if self.seen is not None:
            self.seen[token] = True
