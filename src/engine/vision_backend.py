"""The vision backend: a local vision-language model that reads images in chat messages.

Implements :class:`src.engine.backend.Backend` over transformers' ``AutoProcessor`` and
``AutoModelForImageTextToText`` (LLaVA, Idefics3/SmolVLM, Qwen2-VL, ... folders). Image
content parts (``{"type": "image", "image": <bytes>}``, see src/engine/image_inputs.py) are
decoded with PIL and placed by the processor's chat template.

Unlike the text backend this one does not batch: it serves **one request at a time** on its
own thread, in submission order, with ``model.generate()``. Each generated token is
streamed to the request's handle as it comes; a stopping criterion checked after every
token ends the generation within one token step when the handle is cancelled or a stop
string appears. Per-request sampling covers what ``generate()`` offers: temperature,
top_p, top_k, repetition penalty, min/max new tokens, max time, seed and stop strings.
Log probs, logit bias, presence/frequency penalties, logits processors and constrained
output are refused up front.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

from src.contract import ModelInfo
from src.engine.backend import model_info
from src.engine.context_fit import fitted
from src.engine.handle import RequestHandle
from src.engine.image_inputs import decode_image
from src.engine.loader import _dtype, configure_torch_threads
from src.engine.textstream import TextStream
from src.engine.types import Capabilities, FinishReason, GenerationRequest, Message, TokenEvent
from src.errors import ContextLengthError, EngineError, UnsupportedFeatureError
from src.settings import Settings

log = logging.getLogger(__name__)


def load_vision_backend(path: str, settings: Settings) -> VisionBackend:
    """Load a local vision-language model folder (offline) and start its backend."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    configure_torch_threads(settings.resolved_threads())
    start = time.perf_counter()
    folder = Path(path).expanduser().resolve()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
    model: Any = AutoModelForImageTextToText.from_pretrained(
        str(folder), dtype=_dtype(settings, device), local_files_only=True
    )
    model = model.to(device)
    model.eval()
    log.info("loaded vision model %s on %s in %.1f s", folder.name, device, time.perf_counter() - start)
    return VisionBackend(folder.name, processor, model, device,
                         max_queue_time=settings.max_queue_time or None)


def _context_window(config: Any) -> int:
    text = getattr(config, "text_config", None) or config
    return int(getattr(text, "max_position_embeddings", None) or 2048)


def _template_message(message: Message) -> tuple[dict[str, Any], list[bytes]]:
    """A message in the content-parts form processors' chat templates read, and its images."""
    content = message.get("content")
    if not isinstance(content, list):
        return {"role": message["role"], "content": [{"type": "text", "text": str(content or "")}]}, []
    parts: list[dict[str, Any]] = []
    images: list[bytes] = []
    for part in content:
        if part.get("type") == "image":
            parts.append({"type": "image"})
            images.append(part["image"])
        else:
            parts.append({"type": "text", "text": str(part.get("text") or "")})
    return {"role": message["role"], "content": parts}, images


class _Streamer:
    """generate()'s streamer: new tokens -> the handle's events (the prompt is skipped)."""

    def __init__(self, handle: RequestHandle, text: TextStream, prompt_tokens: int) -> None:
        self.handle = handle
        self.text = text
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = 0
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt
            self._prompt_seen = True
            return
        ids = [int(i) for i in value.reshape(-1).tolist()]
        self.completion_tokens += len(ids)
        delta = self.text.add(ids)
        if delta:
            self.handle.put(TokenEvent(delta, self.prompt_tokens, self.completion_tokens))

    def end(self) -> None:
        pass


class _StopWhen:
    """Stops generate() once the handle is cancelled or a stop string was reached."""

    def __init__(self, handle: RequestHandle, text: TextStream) -> None:
        self.handle = handle
        self.text = text

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        stop = self.handle.is_cancelled() or self.text.stopped
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class VisionBackend:
    """A local vision-language model, one request at a time on its own thread."""

    capabilities = Capabilities(logprobs=False, logit_bias=False, vision=True)

    def __init__(self, name: str, processor: Any, model: Any, device: str,
                 max_queue_time: float | None = None) -> None:
        self._name = name
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.model = model
        self.device = device
        self.max_queue_time = max_queue_time
        self._context_window = _context_window(model.config)
        self._ids = itertools.count(1)
        self._queue: queue.Queue[tuple[RequestHandle, dict[str, Any], int] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._active = 0
        self._running = 0
        self._thread = threading.Thread(target=self._serve, name=f"vision-{name}", daemon=True)
        self._thread.start()

    # --- Backend ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def active_requests(self) -> int:
        return self._active

    def submit(self, request: GenerationRequest, cancel: threading.Event | None = None) -> RequestHandle:
        """Queue ``request``; refuses what generate() cannot do and prompts over the window."""
        self._refuse_unsupported(request)
        inputs = self.inputs(request)
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        if not prompt_tokens:
            raise ContextLengthError("the prompt is empty")
        request = fitted(request, prompt_tokens, self.context_window)
        handle = RequestHandle(next(self._ids), request, self.max_queue_time, cancel)
        with self._lock:
            self._active += 1
        self._queue.put((handle, inputs, prompt_tokens))
        return handle

    def _refuse_unsupported(self, request: GenerationRequest) -> None:
        opts = request.options
        refused = [
            ("constrained output", "response_format", request.constraint is not None),
            ("log probs", "logprobs", opts.logprobs is not None),
            ("logit bias", "logit_bias", bool(opts.logit_bias)),
            ("presence penalty", "presence_penalty", bool(opts.presence_penalty)),
            ("frequency penalty", "frequency_penalty", bool(opts.frequency_penalty)),
            ("logits processors", "logits_processors", bool(request.logits_processors)),
        ]
        for what, param, asked in refused:
            if asked:
                raise UnsupportedFeatureError(
                    f"{what} is not available on the vision model {self.name!r}", param=param
                )

    def inputs(self, request: GenerationRequest) -> dict[str, Any]:
        """The processor's tensors (input ids, pixel values, ...) for ``request``, on the device."""
        if request.prompt_ids:
            import torch

            return {"input_ids": torch.tensor([list(request.prompt_ids)], device=self.device)}
        images: list[bytes] = []
        if request.messages:
            text = self._render(request.messages, request.chat_template, images)
        else:
            text = request.prompt or ""
        batch = self.processor(
            text=[text], images=[decode_image(b) for b in images] or None, return_tensors="pt"
        )
        return {k: self._on_device(v) for k, v in batch.items()}

    def _on_device(self, value: Any) -> Any:
        """A processor output on the model's device; pixel values in the model's dtype
        (bfloat16 weights on CUDA get bfloat16 pixels)."""
        if not hasattr(value, "to"):
            return value
        if value.is_floating_point():
            return value.to(self.device, dtype=self.model.dtype)
        return value.to(self.device)

    def _render(self, messages: Seq[Message], chat_template: str, images: list[bytes]) -> str:
        rendered = []
        for message in messages:
            converted, found = _template_message(message)
            rendered.append(converted)
            images.extend(found)
        template = chat_template or getattr(self.processor, "chat_template", None)
        if not template:
            raise UnsupportedFeatureError(
                f"the vision model {self.name!r} has no chat template to place images with"
            )
        continue_final = rendered[-1]["role"] == "assistant"
        return str(self.processor.apply_chat_template(
            rendered, chat_template=chat_template or None, tokenize=False,
            add_generation_prompt=not continue_final, continue_final_message=continue_final,
        ))

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def detokenize(self, ids: Seq[int]) -> str:
        return str(self.tokenizer.decode(list(ids)))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def chat_prompt_ids(
        self, messages: Seq[Message], prompt_type: str = "", chat_template: str = ""
    ) -> list[int]:
        request = GenerationRequest(messages=tuple(messages), chat_template=chat_template)
        return [int(i) for i in self.inputs(request)["input_ids"][0].tolist()]

    def describe(self) -> ModelInfo:
        return model_info(self, "vision", vocab_size=len(self.tokenizer))

    def health(self) -> dict[str, str]:
        return {"state": "up"}  # in this process: up while it exists

    def stats(self) -> dict[str, int]:
        return {"running": self._running, "queued": max(self._active - self._running, 0),
                "kv_cache_used_tokens": 0, "kv_cache_capacity_tokens": 0}

    def shutdown(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    # --- the serving thread -------------------------------------------------------------
    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            handle, inputs, prompt_tokens = item
            try:
                if handle.start():
                    self._running = 1
                    self._generate(handle, inputs, prompt_tokens)
            except Exception:
                log.exception("the vision model %s failed on request %d", self.name, handle.id)
                handle.fail(EngineError("the vision model failed to answer"))
            finally:
                self._running = 0
                with self._lock:
                    self._active -= 1
                handle.finish()

    def _generate(self, handle: RequestHandle, inputs: dict[str, Any], prompt_tokens: int) -> None:
        import torch
        from transformers import StoppingCriteriaList

        opts = handle.request.options
        handle.put(TokenEvent("", prompt_tokens, 0))  # started
        text = TextStream(self.tokenizer, opts.stop)
        streamer = _Streamer(handle, text, prompt_tokens)
        kwargs: dict[str, Any] = {
            "max_new_tokens": opts.max_new_tokens, "min_new_tokens": opts.min_new_tokens or None,
            "do_sample": opts.sampling, "repetition_penalty": opts.repetition_penalty,
            "max_time": opts.max_time, "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_StopWhen(handle, text)]),
            "pad_token_id": self.tokenizer.eos_token_id if self.tokenizer.pad_token_id is None
            else self.tokenizer.pad_token_id,
        }
        if opts.sampling:
            kwargs.update(temperature=opts.temperature, top_p=opts.top_p, top_k=opts.top_k or None,
                          min_p=opts.min_p or None)
            if opts.seed:
                torch.manual_seed(opts.seed)
        with torch.inference_mode():
            self.model.generate(**inputs, **kwargs)
        done = streamer.completion_tokens
        reason: FinishReason
        if handle.is_cancelled():
            reason = "cancelled"
        elif done >= opts.max_new_tokens and not text.stopped:
            reason = "length"
        else:
            reason = "stop"
        handle.put(TokenEvent(text.flush(), prompt_tokens, done, reason,
                              stop_sequence=text.matched if reason == "stop" else None))
