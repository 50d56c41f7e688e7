"""What the KV cache costs: bytes per token of a model, and tokens in a --kv_cache_gb budget.

Both local backends size their cache from the same budget: the transformers backend bounds
its batch with it, the llama.cpp backend sizes its cache (per slot, or shared) with it.
"""

from __future__ import annotations

from typing import Any

GIB = 1024**3


def kv_bytes_per_token(config: Any, dtype_bytes: int) -> int:
    """Bytes of K and V that one token takes in the cache, over all layers. ``config``: an HF
    config (its ``text_config`` for vision models), or anything with the same attributes."""
    text = getattr(config, "text_config", None) or config
    heads = int(getattr(text, "num_attention_heads", 1))
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(text, "head_dim", None) or int(text.hidden_size) // heads)
    return 2 * int(text.num_hidden_layers) * kv_heads * head_dim * dtype_bytes


def budget_tokens(kv_cache_gb: float, bytes_per_token: int) -> int:
    """Tokens whose K and V fit in ``kv_cache_gb`` GiB."""
    return int(kv_cache_gb * GIB) // max(bytes_per_token, 1)
