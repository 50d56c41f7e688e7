"""Continuous batching for a local transformers model: one step loop, many sequences.

Requests join the running batch at a token boundary and leave it when they finish, are
cancelled or run out of time; no request waits for another's answer to end.

Why our own step loop: transformers' continuous-batching manager
(``generate_batch`` / ``init_continuous_batching``) takes only temperature, top-k and top-p
per request; it has no per-request seed, penalties, logit_bias, stop strings, log probs or
logits processors (the hook grammar-constrained decoding needs), and its paged cache
takes 8 GiB on CPU unless sized by hand. So the loop here drives the model's forward
pass directly with a padded batch and transformers' ``DynamicCache``:

- **Layout.** The batch's KV cache holds every running sequence left-padded to one length
  L; an attention mask marks the padding and each row gets its own position ids, so a
  row computes what it would compute alone. Joining rows are prefilled apart from the
  batch, then their cache is padded (or the batch's is) and concatenated; leaving rows are
  dropped and columns of padding that no row needs any more are trimmed.
- **Bounded prefill.** Short new prompts that arrive together are read in one forward pass
  (left-padded, up to ``2 x prefill_chunk`` tokens); a long prompt is read in chunks of
  ``prefill_chunk`` tokens, one chunk between two decode steps, so it stalls running
  streams for one chunk's time at most.
- **Bounded memory.** At most ``max_batch`` sequences run at once (``--concurrency_count``),
  and a sequence is admitted only while ``rows x longest possible row`` stays within the
  KV cache budget in tokens (``--kv_cache_gb`` of this model's K and V), so the cache can
  never outgrow it. Others wait in FIFO order and time out after ``--max_queue_time``.
- **Sampling** is per sequence (src/engine/sampling.py): each row's logits go through its
  own penalties, bias, processors, temperature/top-k/top-p and ``torch.Generator``.

Works on CPU and CUDA alike (tensors live on the model's device).
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
from typing import Any

import torch
from transformers import DynamicCache

from src.engine.sequence import Sequence
from src.errors import EngineError, EngineUnavailableError

log = logging.getLogger(__name__)


def _layers(cache: Any) -> list[Any]:
    return list(cache.layers)


def _pad_left(cache: Any, n: int) -> None:
    for layer in _layers(cache):
        b, h, _, d = layer.keys.shape
        zeros = layer.keys.new_zeros((b, h, n, d))
        layer.keys = torch.cat([zeros, layer.keys], dim=2)
        layer.values = torch.cat([zeros, layer.values], dim=2)


class Batch:
    """The running rows: their sequences, one padded KV cache, mask, positions, next tokens."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.rows: list[Sequence] = []
        self.cache: Any = None
        self.mask = torch.zeros((0, 0), dtype=torch.long, device=device)
        self.lengths = torch.zeros(0, dtype=torch.long, device=device)  # real tokens per row
        self.next_tokens = torch.zeros(0, dtype=torch.long, device=device)

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    @classmethod
    def of(cls, device: str, seqs: list[Sequence], cache: Any, mask: torch.Tensor,
           first_tokens: list[int]) -> Batch:
        """A batch of freshly prefilled rows (left-padded, ``mask`` marks the real tokens)."""
        batch = cls(device)
        batch.rows, batch.cache, batch.mask = list(seqs), cache, mask
        batch.lengths = mask.sum(dim=1)
        batch.next_tokens = torch.tensor(first_tokens, dtype=torch.long, device=device)
        return batch

    def merge(self, other: Batch) -> None:
        """Take the rows of ``other``: the narrower side is padded on the left to one width."""
        if not other.rows:
            return
        if not self.rows:
            self.rows, self.cache, self.mask = other.rows, other.cache, other.mask
            self.lengths, self.next_tokens = other.lengths, other.next_tokens
            return
        for narrow, wide in ((self, other), (other, self)):
            if narrow.width < wide.width:
                extra = wide.width - narrow.width
                _pad_left(narrow.cache, extra)
                narrow.mask = torch.cat([narrow.mask.new_zeros((len(narrow.rows), extra)), narrow.mask], dim=1)
        for mine, theirs in zip(_layers(self.cache), _layers(other.cache), strict=True):
            mine.keys = torch.cat([mine.keys, theirs.keys], dim=0)
            mine.values = torch.cat([mine.values, theirs.values], dim=0)
        self.mask = torch.cat([self.mask, other.mask], dim=0)
        self.rows = self.rows + other.rows
        self.lengths = torch.cat([self.lengths, other.lengths])
        self.next_tokens = torch.cat([self.next_tokens, other.next_tokens])

    def keep(self, keep: list[int]) -> None:
        """Keep only the rows at ``keep``; drop padding columns no row needs any more."""
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        if not self.rows:
            self.cache = None
            self.mask = self.mask[:0, :0]
            self.lengths, self.next_tokens = self.lengths[:0], self.next_tokens[:0]
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        self.mask, self.lengths, self.next_tokens = self.mask[index], self.lengths[index], self.next_tokens[index]
        drop = self.width - int(self.lengths.max())  # leading columns that are padding in every row
        for layer in _layers(self.cache):
            layer.keys = layer.keys[index, :, drop:]
            layer.values = layer.values[index, :, drop:]
        self.mask = self.mask[:, drop:]

    def forward(self, model: Any) -> torch.Tensor:
        """One decode step for every row: the logits of each row's next token, [rows, vocab]."""
        mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        out = model(
            input_ids=self.next_tokens[:, None], attention_mask=mask,
            position_ids=self.lengths[:, None], past_key_values=self.cache,
            use_cache=True, logits_to_keep=1,
        )
        self.cache, self.mask = out.past_key_values, mask
        self.lengths = self.lengths + 1
        return out.logits[:, -1, :].float()


class BatchEngine:
    """Runs the step loop in its own thread; ``add`` queues a sequence (FIFO)."""

    def __init__(
        self,
        model: Any,
        device: str,
        max_batch: int,
        kv_budget_tokens: int,
        prefill_chunk: int = 256,
    ) -> None:
        self.model = model
        self.device = device
        self.max_batch = max(1, max_batch)
        self.kv_budget_tokens = kv_budget_tokens
        self.prefill_chunk = max(16, prefill_chunk)
        self.batch = Batch(device)
        self.prefilling: Sequence | None = None
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._wake = threading.Condition()
        self._active = 0
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="engine-batch", daemon=True)
        self._thread.start()

    # --- public ---------------------------------------------------------------------------
    def add(self, seq: Sequence) -> None:
        with self._wake:
            if not self._running:
                raise EngineUnavailableError("the engine is stopped")
            self._active += 1
            self._waiting.append(seq)
            self._wake.notify()

    @property
    def active(self) -> int:
        with self._wake:
            return self._active

    def stats(self) -> dict[str, int]:
        with self._wake:
            queued = len(self._waiting)
        running = len(self.batch.rows) + (self.prefilling is not None)
        return {"running": running, "queued": queued,
                "kv_cache_used_tokens": len(self.batch.rows) * self.batch.width,
                "kv_cache_capacity_tokens": self.kv_budget_tokens}

    def shutdown(self) -> None:
        """Stop the loop; sequences still queued or running fail with EngineUnavailableError."""
        with self._wake:
            self._running = False
            self._wake.notify()
        self._thread.join(timeout=10)

    # --- the loop -------------------------------------------------------------------------
    def _loop(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            with self._wake:
                while self._running and not (self._waiting or self.prefilling or self.batch.rows):
                    self._wake.wait()
                if not self._running:
                    break
            self._drop_cancelled_waiting()
            if self.prefilling is None:
                group = self._admit()
                if len(group) == 1 and group[0].prompt_len > self.prefill_chunk:
                    self.prefilling = group[0]
                elif group:
                    self._guarded(functools.partial(self._prefill_together, group), group)
            if self.prefilling is not None:
                self._guarded(self._prefill_chunk, [self.prefilling])
            if self.batch.rows:
                self._guarded(self._decode, list(self.batch.rows))
        self._fail_all(EngineUnavailableError("the engine stopped"))

    def _guarded(self, step: Any, rows: list[Sequence]) -> None:
        """Run a step; a failure ends the sequences it touched, never the loop."""
        try:
            step()
        except Exception as exc:  # a bug in generation must not kill the engine thread
            log.exception("generation step failed")
            for seq in rows:
                self._fail(seq, EngineError(f"generation failed: {type(exc).__name__}"))
            if self.prefilling in rows:
                self.prefilling = None
            if any(seq in rows for seq in self.batch.rows):
                self.batch = Batch(self.device)

    def _admit(self) -> list[Sequence]:
        """The next waiting sequences that fit the batch and the KV budget (FIFO: no skipping).

        Short prompts are taken together (up to ``2 x prefill_chunk`` padded tokens) and read
        in one forward pass; a prompt longer than a chunk comes alone and is read in chunks.
        """
        group: list[Sequence] = []
        with self._wake:
            while self._waiting:
                seq = self._waiting[0]
                rows = self.batch.rows + group
                longest = max([seq.final_len, *(r.final_len for r in rows)])
                if rows and (len(rows) >= self.max_batch or (len(rows) + 1) * longest > self.kv_budget_tokens):
                    break
                long_prompt = seq.prompt_len > self.prefill_chunk
                widest = max([seq.prompt_len, *(g.prompt_len for g in group)])
                if group and (long_prompt or (len(group) + 1) * widest > 2 * self.prefill_chunk):
                    break
                group.append(self._waiting.popleft())
                if long_prompt:
                    break
        started = [seq for seq in group if seq.start()]
        for seq in group:
            if seq not in started:  # cancelled or timed out while it waited
                self._release(seq)
        return started

    def _drop_cancelled_waiting(self) -> None:
        with self._wake:
            gone = [s for s in self._waiting if s.handle.is_cancelled()]
            for seq in gone:
                self._waiting.remove(seq)
        for seq in gone:
            self._release(seq)

    def _prefill_chunk(self) -> None:
        seq = self.prefilling
        assert seq is not None
        if seq.handle.is_cancelled():
            self.prefilling = None
            seq.end("cancelled")
            self._release(seq)
            return
        if seq.cache is None:
            seq.cache = DynamicCache(config=self.model.config)
        start = seq.prefilled
        chunk = seq.prompt_ids[start:start + self.prefill_chunk]
        ids = torch.tensor([chunk], dtype=torch.long, device=self.device)
        end = start + len(chunk)
        out = self.model(
            input_ids=ids, attention_mask=torch.ones((1, end), dtype=torch.long, device=self.device),
            position_ids=torch.arange(start, end, device=self.device)[None], past_key_values=seq.cache,
            use_cache=True, logits_to_keep=1,
        )
        seq.cache, seq.prefilled = out.past_key_values, end
        if end < seq.prompt_len:
            return
        self.prefilling = None
        mask = torch.ones((1, seq.prompt_len), dtype=torch.long, device=self.device)
        cache, seq.cache = seq.cache, None
        self._join([seq], cache, mask, out.logits[:, -1, :].float())

    def _prefill_together(self, group: list[Sequence]) -> None:
        """Read several short prompts in one forward pass (left-padded), then join the batch."""
        width = max(seq.prompt_len for seq in group)
        ids = torch.zeros((len(group), width), dtype=torch.long, device=self.device)
        mask = torch.zeros((len(group), width), dtype=torch.long, device=self.device)
        for i, seq in enumerate(group):
            ids[i, width - seq.prompt_len:] = torch.tensor(seq.prompt_ids, device=self.device)
            mask[i, width - seq.prompt_len:] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         past_key_values=DynamicCache(config=self.model.config), use_cache=True,
                         logits_to_keep=1)
        self._join(group, out.past_key_values, mask, out.logits[:, -1, :].float())

    def _join(self, seqs: list[Sequence], cache: Any, mask: torch.Tensor, logits: torch.Tensor) -> None:
        """Prefilled rows take their first token and join the running batch (unless already done)."""
        tokens = [seq.step(logits[i]) for i, seq in enumerate(seqs)]
        joining = Batch.of(self.device, seqs, cache, mask, tokens)
        done = [seq for seq in seqs if seq.finish_reason is not None]
        joining.keep([i for i, seq in enumerate(seqs) if seq.finish_reason is None])
        self.batch.merge(joining)
        for seq in done:
            self._release(seq)

    def _decode(self) -> None:
        logits = self.batch.forward(self.model)
        keep: list[int] = []
        tokens: list[int] = []
        done: list[Sequence] = []
        for i, seq in enumerate(self.batch.rows):
            if seq.handle.is_cancelled():
                seq.end("cancelled")
                tokens.append(0)  # the row is dropped below
            else:
                tokens.append(seq.step(logits[i]))
            if seq.finish_reason is None:
                keep.append(i)
            else:
                done.append(seq)
        self.batch.next_tokens = torch.tensor(tokens, dtype=torch.long, device=self.device)
        self.batch.keep(keep)
        for seq in done:
            self._release(seq)

    # --- bookkeeping ----------------------------------------------------------------------
    def _release(self, seq: Sequence) -> None:
        """The sequence is done (finished, cancelled or failed): it no longer counts as active."""
        if seq.finish_reason is None and not seq.handle.started:
            seq.handle.finish()  # never started: its consumer sees the end (or its own timeout)
        with self._wake:
            self._active -= 1

    def _fail(self, seq: Sequence, error: BaseException) -> None:
        seq.handle.fail(error)
        seq.handle.finish()
        seq.finish_reason = "cancelled"
        with self._wake:
            self._active -= 1

    def _fail_all(self, error: BaseException) -> None:
        with self._wake:
            waiting, self._waiting = list(self._waiting), collections.deque()
        rows = list(self.batch.rows) + ([self.prefilling] if self.prefilling else [])
        for seq in waiting + rows:
            self._fail(seq, error)
        self.batch, self.prefilling = Batch(self.device), None
