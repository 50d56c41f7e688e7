"""One request's life inside the batch: its prompt, sampler, text and why it ends.

The batching loop (src/engine/batching.py) feeds a :class:`Sequence` the logits of each
step; the sequence picks its token, turns tokens into text deltas (stop strings held back
and cut), records log probs when asked, and puts :class:`TokenEvent` s on its handle.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from src.engine.handle import RequestHandle
from src.engine.sampling import SequenceSampler
from src.engine.textstream import TextStream
from src.engine.types import FinishReason, TokenEvent, TokenLogprob


class Sequence:
    """A started request: token ids so far and its sampling and text state."""

    def __init__(
        self,
        handle: RequestHandle,
        prompt_ids: list[int],
        tokenizer: Any,
        eos_ids: list[int],
        vocab_size: int,
        context_window: int,
        device: str,
    ) -> None:
        options = handle.request.options
        self.handle = handle
        self.prompt_ids = prompt_ids
        self.tokenizer = tokenizer
        self.eos_ids = set(eos_ids)
        self.max_new = max(0, min(options.max_new_tokens, context_window - len(prompt_ids)))
        self.sampler = SequenceSampler(
            options, prompt_ids, eos_ids, vocab_size, device, handle.request.logits_processors
        )
        self.text = TextStream(tokenizer, options.stop)
        self.top_logprobs = options.logprobs
        self.special = set(tokenizer.all_special_ids) if options.logprobs is not None else set()
        self.pending_logprobs: list[TokenLogprob] = []
        self.prefilled = 0  # prompt tokens already in the KV cache
        self.cache: Any = None  # the sequence's own cache while it is prefilled alone
        self.started_at = 0.0
        self.finish_reason: FinishReason | None = None

    @property
    def prompt_len(self) -> int:
        return len(self.prompt_ids)

    @property
    def final_len(self) -> int:
        """The most tokens this sequence can hold in the KV cache."""
        return self.prompt_len + self.max_new

    @property
    def completion_tokens(self) -> int:
        return len(self.sampler.generated)

    def start(self) -> bool:
        """Leave the queue: the first (empty) event goes out; False if it was cancelled."""
        if not self.handle.start():
            return False
        self.started_at = time.monotonic()
        self.handle.put(TokenEvent("", self.prompt_len, 0))
        return True

    # --- one step -------------------------------------------------------------------------
    def step(self, logits: torch.Tensor) -> int:
        """Pick the next token from this step's logits, emit its text; returns the token."""
        scores = self.sampler.process(logits)
        token = self.sampler.choose(scores)
        if self.top_logprobs is not None and token not in self.special:
            self.pending_logprobs.append(self._logprob(scores, token))
        self.sampler.record(token)
        delta = self.text.add([token])
        self._check_finished(token)
        if self.finish_reason is not None:
            self.end(self.finish_reason, delta)
        elif delta:
            self.handle.put(TokenEvent(delta, self.prompt_len, self.completion_tokens, None,
                                       self._take_logprobs()))
        return token

    def _check_finished(self, token: int) -> None:
        if self.text.stopped:
            self.finish_reason = "stop"
        elif token in self.eos_ids and self.completion_tokens >= self.sampler.options.min_new_tokens:
            self.finish_reason = "stop"
        elif self.completion_tokens >= self.max_new or self.out_of_time():
            self.finish_reason = "length"

    def out_of_time(self) -> bool:
        max_time = self.handle.request.options.max_time
        return bool(max_time) and time.monotonic() - self.started_at > max_time  # type: ignore[operator]

    def end(self, reason: FinishReason, delta: str = "") -> None:
        """The last event: ``delta`` and held-back text, the finish reason; then the handle is done."""
        self.finish_reason = reason
        tail = delta + self.text.flush()
        self.handle.put(TokenEvent(tail, self.prompt_len, self.completion_tokens, reason,
                                   self._take_logprobs(),
                                   stop_sequence=self.text.matched if reason == "stop" else None))
        self.handle.finish()
        self.cache = None

    # --- log probs ------------------------------------------------------------------------
    def _logprob(self, scores: torch.Tensor, token: int) -> TokenLogprob:
        logprobs = torch.log_softmax(scores.float(), dim=-1)
        decode = self.tokenizer.decode
        top: tuple[tuple[str, float], ...] = ()
        if self.top_logprobs:
            values, ids = torch.topk(logprobs, self.top_logprobs)
            top = tuple((decode([i]), float(v)) for v, i in zip(values.tolist(), ids.tolist(), strict=True))
        return TokenLogprob(decode([token]), float(logprobs[token]), top)

    def _take_logprobs(self) -> tuple[TokenLogprob, ...]:
        taken, self.pending_logprobs = tuple(self.pending_logprobs), []
        return taken
