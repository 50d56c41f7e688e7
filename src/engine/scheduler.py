"""The engine: one model, one generation thread, requests served in FIFO order.

Callers submit a :class:`GenerationRequest` and iterate the :class:`RequestHandle` for
:class:`TokenEvent` s; the first, with empty text, says the generation has started (a
server can send its response headers then, before the first token). Closing or
cancelling a handle stops its generation within one token step. A request that waits longer than ``max_queue_time`` for the generation
thread is refused with :class:`QueueTimeoutError`.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from src.engine.loader import LoadedModel
from src.engine.sampling import (
    LogprobRecorder,
    generation_config,
    logits_processors,
    seed_generator,
)
from src.engine.textstream import TextStream
from src.engine.types import FinishReason, GenerationRequest, TokenEvent, TokenLogprob
from src.errors import ContextLengthError, EngineError, EngineUnavailableError, QueueTimeoutError

log = logging.getLogger(__name__)

_DONE = object()


class RequestHandle:
    """A submitted request: iterate it for events; ``cancel()`` or ``close()`` to stop it."""

    def __init__(
        self,
        request_id: int,
        request: GenerationRequest,
        max_queue_time: float | None,
        cancelled: threading.Event | None = None,
    ):
        self.id = request_id
        self.request = request
        self.submitted = time.monotonic()
        self.max_queue_time = max_queue_time
        self.cancelled = cancelled if cancelled is not None else threading.Event()
        self.started = False
        self.lock = threading.Lock()
        self.events: queue.Queue[Any] = queue.Queue()

    def cancel(self) -> None:
        self.cancelled.set()

    close = cancel

    def __iter__(self) -> Iterator[TokenEvent]:
        try:
            while True:
                item = self._next()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.cancel()

    def _next(self) -> Any:
        if self.started or not self.max_queue_time:
            return self.events.get()
        while True:
            remaining = self.submitted + self.max_queue_time - time.monotonic()
            try:
                return self.events.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                with self.lock:
                    if not self.started:
                        self.cancelled.set()
                        raise QueueTimeoutError(
                            f"the request waited over {self.max_queue_time:g} s for the engine"
                        ) from None


class _Streamer(BaseStreamer):
    """Receives token ids from generate() and forwards text deltas to the handle."""

    def __init__(
        self, handle: RequestHandle, text: TextStream, recorder: LogprobRecorder | None = None
    ) -> None:
        self.handle = handle
        self.text = text
        self.prompt_seen = False
        self.completion_tokens = 0
        self.recorder = recorder
        self.logprobs: list[TokenLogprob] = []  # not yet sent: their text may be held back
        # End-of-turn and other special tokens are not part of the answer's text.
        self.special = set(text.tokenizer.all_special_ids) if recorder is not None else set()

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        ids = value.reshape(-1).tolist()
        self.completion_tokens += len(ids)
        if self.recorder is not None and self.recorder.last is not None:
            self.logprobs.extend(self._logprob(i) for i in ids if i not in self.special)
        delta = self.text.add(ids)
        if delta:
            prompt_tokens = len(self.handle.request.prompt_ids)
            self.handle.events.put(
                TokenEvent(delta, prompt_tokens, self.completion_tokens, None, self.take_logprobs())
            )

    def take_logprobs(self) -> tuple[TokenLogprob, ...]:
        taken, self.logprobs = tuple(self.logprobs), []
        return taken

    def _logprob(self, token_id: int) -> TokenLogprob:
        assert self.recorder is not None and self.recorder.last is not None
        last, k = self.recorder.last, self.handle.request.options.logprobs or 0
        decode = self.text.tokenizer.decode
        top: tuple[tuple[str, float], ...] = ()
        if k:
            values, ids = torch.topk(last, k)
            top = tuple((decode([i]), float(v)) for v, i in zip(values.tolist(), ids.tolist(), strict=True))
        return TokenLogprob(decode([token_id]), float(last[token_id]), top)

    def end(self) -> None:
        pass


class _StopWhen(StoppingCriteria):
    def __init__(self, handle: RequestHandle, text: TextStream) -> None:
        self.handle = handle
        self.text = text

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> Any:
        done = self.handle.cancelled.is_set() or self.text.stopped
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class Engine:
    """Owns the model and serves generation requests one at a time, first come first served."""

    def __init__(self, loaded: LoadedModel, max_queue_time: float | None = None) -> None:
        self.loaded = loaded
        self.max_queue_time = max_queue_time
        self._queue: queue.Queue[RequestHandle | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._active = 0
        self._active_lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="engine-generate", daemon=True)
        self._thread.start()

    # --- public API --------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.loaded.name

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def active_requests(self) -> int:
        """Requests submitted and not yet finished or cancelled (queued ones included)."""
        with self._active_lock:
            return self._active

    def count_tokens(self, text: str) -> int:
        return len(self.loaded.tokenizer.encode(text, add_special_tokens=False))

    def submit(
        self, request: GenerationRequest, cancel: threading.Event | None = None
    ) -> RequestHandle:
        """Queue a request; iterate the returned handle for its events.

        ``cancel``, when given, becomes the handle's cancellation event: another thread
        can set it to stop the generation within one token step, even while a consumer
        is blocked waiting for the next event.
        """
        if not self._running:
            raise EngineUnavailableError("the engine is stopped")
        prompt_len = len(request.prompt_ids)
        if prompt_len == 0:
            raise ContextLengthError("the prompt is empty")
        if prompt_len >= self.loaded.max_seq_len:
            raise ContextLengthError(
                f"the prompt has {prompt_len} tokens; the model's context window is "
                f"{self.loaded.max_seq_len}"
            )
        handle = RequestHandle(next(self._ids), request, self.max_queue_time, cancel)
        with self._active_lock:
            self._active += 1
        self._queue.put(handle)
        return handle

    def generate(self, request: GenerationRequest) -> Iterator[TokenEvent]:
        """Submit and iterate; closing the iterator cancels the request."""
        yield from self.submit(request)

    def shutdown(self) -> None:
        self._running = False
        self._queue.put(None)
        self._thread.join(timeout=5)

    # --- the generation thread ---------------------------------------------------------
    def _loop(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            handle = self._queue.get()
            if handle is None:
                return
            try:
                with handle.lock:
                    skip = handle.cancelled.is_set()
                    handle.started = not skip
                if not skip:
                    self._run(handle)
            except EngineError as exc:
                handle.events.put(exc)
            except Exception as exc:  # a bug in generation must not kill the engine thread
                log.exception("generation %s failed", handle.id)
                handle.events.put(EngineError(f"generation failed: {type(exc).__name__}"))
            finally:
                handle.events.put(_DONE)
                with self._active_lock:
                    self._active -= 1

    def _run(self, handle: RequestHandle) -> None:
        request, loaded = handle.request, self.loaded
        options = request.options
        prompt_len = len(request.prompt_ids)
        max_new = min(options.max_new_tokens, loaded.max_seq_len - prompt_len)
        text = TextStream(loaded.tokenizer, options.stop)
        recorder = LogprobRecorder() if options.logprobs is not None else None
        streamer = _Streamer(handle, text, recorder)
        handle.events.put(TokenEvent("", prompt_len, 0))  # started: off the queue, for good
        input_ids = torch.tensor([request.prompt_ids], device=loaded.device)
        pad = loaded.tokenizer.pad_token_id
        config = generation_config(
            options, max_new, pad if pad is not None else loaded.eos_token_ids[0], loaded.eos_token_ids
        )
        seed_generator(options)
        output = loaded.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            generation_config=config,
            logits_processor=logits_processors(options, prompt_len, recorder),
            stopping_criteria=StoppingCriteriaList([_StopWhen(handle, text)]),
            streamer=streamer,
        )
        generated = output[0, prompt_len:].tolist()
        reason = self._finish_reason(handle, text, generated)
        tail = text.flush()
        handle.events.put(
            TokenEvent(tail, prompt_len, streamer.completion_tokens, reason, streamer.take_logprobs())
        )

    def _finish_reason(self, handle: RequestHandle, text: TextStream, generated: list[int]) -> FinishReason:
        if text.stopped:
            return "stop"
        if handle.cancelled.is_set():
            return "cancelled"
        if generated and generated[-1] in self.loaded.eos_token_ids:
            return "stop"
        return "length"
