"""The Backend interface: what evaluate(), the UI and the IPC need of a model.

In the spirit of vLLM's ``EngineClient`` and simonw/llm's ``Model``: a backend takes a
:class:`GenerationRequest` (chat messages, a prompt text or token ids, declarative
sampling options and an optional output constraint) and returns a handle of
:class:`TokenEvent` s; it tokenizes with its own tokenizer and declares what it can do.
Implementations: :class:`src.engine.llamacpp_backend.LlamaCppBackend` (GGUF models on a
supervised llama-server, the default), :class:`src.engine.transformers_backend.TransformersBackend`
(a local model with continuous batching), :class:`src.engine.vision_backend.VisionBackend` (a
local vision-language model reading image content parts) and
:class:`src.engine.remote_backend.RemoteBackend` (an OpenAI-compatible server). Nothing above
``src/engine/`` names an implementation:
callers get backends from the :class:`src.engine.registry.ModelRegistry`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from src.contract import BackendKind, ModelCapabilities, ModelInfo
from src.engine.types import Capabilities, GenerationRequest, Message, TokenEvent


class Handle(Protocol):
    """A submitted request (src.engine.handle.RequestHandle)."""

    def __iter__(self) -> Iterator[TokenEvent]: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...

    def background(self) -> None:
        """Make the request progress while the caller reads other handles first."""
        ...


@runtime_checkable
class Backend(Protocol):
    """One served model."""

    @property
    def name(self) -> str:
        """The model's id, as /v1/models lists it."""
        ...

    @property
    def context_window(self) -> int:
        """Most tokens of prompt plus answer."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def active_requests(self) -> int:
        """Requests submitted and not yet finished or cancelled (queued ones included)."""
        ...

    def submit(self, request: GenerationRequest, cancel: threading.Event | None = None) -> Handle:
        """Queue ``request``; raises before queueing when it cannot be served (context window,
        a capability it lacks). ``cancel``, when given, stops the generation once set."""
        ...

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[int]: ...

    def detokenize(self, ids: Sequence[int]) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def chat_prompt_ids(
        self, messages: Sequence[Message], prompt_type: str = "", chat_template: str = ""
    ) -> list[int]:
        """The token ids the model reads for ``messages`` (its chat template applied)."""
        ...

    def describe(self) -> ModelInfo:
        """The model as the contract describes it: backend kind, context window, vocabulary
        size, modalities, capabilities (src/contract/)."""
        ...

    def stats(self) -> dict[str, int]:
        """``running``, ``queued``, ``kv_cache_used_tokens``, ``kv_cache_capacity_tokens``."""
        ...

    def health(self) -> dict[str, str]:
        """``{"state": "up"}``, or ``{"state": "down", "error": ...}`` for a backend whose engine
        is elsewhere and cannot be reached now (a remote backend probes it)."""
        ...

    def shutdown(self) -> None: ...


def model_info(backend: Backend, kind: BackendKind, vocab_size: int | None = None,
               inference_server: str | None = None, remote_model: str | None = None) -> ModelInfo:
    """The contract's description of ``backend`` from its declared capabilities."""
    caps = backend.capabilities
    return ModelInfo(
        id=backend.name, backend=kind, context_window=backend.context_window, vocab_size=vocab_size,
        modalities=["text", "image"] if caps.vision else ["text"],
        capabilities=ModelCapabilities(tools=caps.tools, constrained_decoding=caps.constrained_decoding,
                                       logprobs=caps.logprobs, logit_bias=caps.logit_bias, vision=caps.vision),
        inference_server=inference_server, remote_model=remote_model,
    )
