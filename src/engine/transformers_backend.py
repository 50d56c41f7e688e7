"""The transformers backend: a transformers model in the engine process, with continuous batching.

Implements :class:`src.engine.backend.Backend` over a :class:`LoadedModel` and the step
loop of src/engine/batching.py. Chat messages are rendered here with the model's chat
template (or as plain text), so callers never touch the tokenizer.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Sequence as Seq

from src.contract import LogitsRequest, ModelInfo
from src.engine.backend import model_info
from src.engine.batching import BatchEngine
from src.engine.constraints import GrammarCompiler
from src.engine.context_fit import fitted
from src.engine.handle import RequestHandle
from src.engine.kv_budget import budget_tokens, kv_bytes_per_token
from src.engine.loader import LoadedModel
from src.engine.next_token import local_probs
from src.engine.prompting import render_prompt
from src.engine.sequence import Sequence
from src.engine.types import Capabilities, GenerationRequest, Message
from src.errors import ContextLengthError, InvalidParamsError
from src.settings_model import DEFAULT_KV_CACHE_GB


class TransformersBackend:
    """A local model: tokenizer, chat template, and a batch engine running its generations."""

    capabilities = Capabilities(logprobs=True, logit_bias=True, logits_processors=True,
                                constrained_decoding=True, tools=True, template_tools=True)

    def __init__(
        self,
        loaded: LoadedModel,
        max_queue_time: float | None = None,
        concurrency: int = 16,
        kv_cache_gb: float = DEFAULT_KV_CACHE_GB,
        prefill_chunk: int = 256,
    ) -> None:
        self.loaded = loaded
        self.max_queue_time = max_queue_time
        per_token = kv_bytes_per_token(loaded.model.config, loaded.kv_dtype_bytes)
        self.kv_budget_tokens = max(budget_tokens(kv_cache_gb, per_token), loaded.max_seq_len)
        head = loaded.model.get_output_embeddings()  # an int8 Linear has no .weight tensor
        self.vocab_size = int(getattr(head, "out_features", None) or loaded.model.config.vocab_size)
        self._ids = itertools.count(1)
        self.grammars = GrammarCompiler(loaded.tokenizer, self.vocab_size, loaded.eos_token_ids)
        self._engine = BatchEngine(loaded.model, loaded.device, concurrency, self.kv_budget_tokens,
                                   prefill_chunk)

    # --- Backend ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def context_window(self) -> int:
        return self.loaded.max_seq_len

    @property
    def active_requests(self) -> int:
        return self._engine.active

    def submit(self, request: GenerationRequest, cancel: threading.Event | None = None) -> RequestHandle:
        """Queue ``request`` for the batch; refuses a prompt that does not fit the context window
        (and a strict max_new_tokens that does not fit after it: src/engine/context_fit.py) and
        a constraint that cannot be compiled (InvalidParamsError, with ``param``)."""
        if request.constraint is not None:
            if request.options.min_new_tokens:  # it would hold back the end the grammar requires
                raise InvalidParamsError("min_new_tokens cannot be combined with constrained output",
                                         param="min_new_tokens")
            mask = self.grammars.processor(request.constraint)
            request = dataclasses.replace(request, constraint=None,
                                          logits_processors=(*request.logits_processors, mask))
        prompt_ids = self.prompt_ids(request)
        if not prompt_ids:
            raise ContextLengthError("the prompt is empty")
        request = fitted(request, len(prompt_ids), self.context_window)
        handle = RequestHandle(next(self._ids), request, self.max_queue_time, cancel)
        loaded = self.loaded
        seq = Sequence(handle, prompt_ids, loaded.tokenizer, loaded.eos_token_ids, self.vocab_size,
                       self.context_window, loaded.device)
        self._engine.add(seq)
        return handle

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The token ids a request asks to continue."""
        if request.prompt_ids:
            return list(request.prompt_ids)
        if request.messages:
            return render_prompt(self.loaded.tokenizer, request.messages, request.prompt_type,
                                 request.chat_template, request.tools)
        return self.tokenize(request.prompt or "", add_special_tokens=True)

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(self.loaded.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def detokenize(self, ids: Seq[int]) -> str:
        return str(self.loaded.tokenizer.decode(list(ids)))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def chat_prompt_ids(
        self, messages: Seq[Message], prompt_type: str = "", chat_template: str = ""
    ) -> list[int]:
        return render_prompt(self.loaded.tokenizer, messages, prompt_type, chat_template)

    def next_token_probs(self, request: LogitsRequest) -> list[tuple[str, float]]:
        """One forward pass of the prompt (src/engine/next_token.py), beside the batch."""
        ids = self.tokenize(request.prompt, add_special_tokens=True)
        if len(ids) >= self.context_window:
            raise ContextLengthError(f"the prompt has {len(ids)} tokens; the model's context window is "
                                     f"{self.context_window}")
        return local_probs(self.loaded.model, self.loaded.tokenizer, ids, request)

    def describe(self) -> ModelInfo:
        return model_info(self, "transformers", vocab_size=len(self.loaded.tokenizer))

    def health(self) -> dict[str, str]:
        return {"state": "up"}  # in this process: up while it exists

    def stats(self) -> dict[str, int]:
        return self._engine.stats()

    def shutdown(self) -> None:
        self._engine.shutdown()
