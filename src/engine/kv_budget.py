"""What the KV cache costs: bytes per token of a model, and tokens in a --kv_cache_gb budget.

Both local backends size their cache from the same budget: the transformers backend bounds
its batch with it, the llama.cpp backend sizes its cache (per slot, or shared) with it.
"""

from __future__ import annotations

from typing import Any

GIB = 1024**3
#: Bytes per element of each llama.cpp KV cache type (ggml's block sizes: q8_0 keeps 32 values
#: in 34 bytes, q4_0 in 18, ...), relative to which an f16 figure is scaled.
CACHE_TYPE_BYTES: dict[str, float] = {
    "f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "q4_1": 20 / 32,
    "iq4_nl": 18 / 32, "q5_0": 22 / 32, "q5_1": 24 / 32,
}


def kv_bytes_per_token(config: Any, dtype_bytes: int) -> int:
    """Bytes of K and V that one token takes in the cache, over all layers. ``config``: an HF
    config (its ``text_config`` for vision models), or anything with the same attributes."""
    text = getattr(config, "text_config", None) or config
    heads = int(getattr(text, "num_attention_heads", 1))
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(text, "head_dim", None) or int(text.hidden_size) // heads)
    return 2 * int(text.num_hidden_layers) * kv_heads * head_dim * dtype_bytes


def cache_type_bytes(f16_bytes_per_token: int, cache_type: str | None) -> int:
    """Bytes per token of a cache of ``cache_type`` (llama.cpp's -ctk/-ctv; f16 when None),
    from the f16 figure."""
    factor = CACHE_TYPE_BYTES.get(cache_type or "f16", 2.0) / 2.0
    return max(1, round(f16_bytes_per_token * factor))


def budget_tokens(kv_cache_gb: float, bytes_per_token: int) -> int:
    """Tokens whose K and V fit in ``kv_cache_gb`` GiB."""
    return int(kv_cache_gb * GIB) // max(bytes_per_token, 1)
