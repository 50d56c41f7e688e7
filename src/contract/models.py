"""The contract of the model endpoints (text-generation-webui's /v1/internal/model/*): what
can be loaded, what is loaded, and a load request with its typed arguments.

The wire's free ``args`` map (textgen's loader flags) is translated by the worker into
:class:`LoadArgs` (an unknown name is a 400 there); the engine builds the new backend from it
(src/engine/swap.py) and switches to it once it is up.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from src.contract.base import Contract

LlmBackend = Literal["auto", "transformers", "llamacpp"]
#: The KV cache types llama-server takes (--cache-type-k/-v); all but f32, f16 and bf16 are
#: quantized, which llama.cpp does to the V cache only with flash attention.
CacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]
CACHE_TYPES: tuple[str, ...] = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")


class LoadArgs(Contract):
    """How to load a model; None keeps the server's flag (--max_seq_len, --llamacpp_dict, ...)."""

    context: int | None = None  # context window per sequence, in tokens
    gpu_layers: int | None = None  # layers offloaded to the GPU (llama.cpp)
    threads: int | None = None
    batch_size: int | None = None  # llama.cpp's logical batch (n_batch)
    parallel: int | None = None  # sequences decoded at once (llama.cpp's slots)
    backend: LlmBackend | None = None  # --llm_backend for this model
    load_8bit: bool | None = None
    flash_attn: bool | None = None  # llama.cpp's flash attention (-fa on|off); None: its auto
    cache_type: CacheType | None = None  # llama.cpp's K and V cache type; None: f16


class LoadModelRequest(Contract):
    """Load ``name`` (one of :class:`ModelNames`, or a path --base_model accepts) and serve it
    in place of the current model."""

    name: str
    args: LoadArgs = msgspec.field(default_factory=LoadArgs)


class ModelNames(Contract):
    """The models this server can load, by name."""

    model_names: list[str]


class ModelState(Contract):
    """The model served now (``model_name`` empty: none, after an unload) and its loader
    (``llama.cpp``, ``Transformers``, ``vision``, ``remote``)."""

    model_name: str
    loader: str = ""
    lora_names: list[str] = []
    context_window: int = 0
