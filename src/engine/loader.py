"""Load the LLM and its tokenizer for the engine process."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from src.engine.convert import cached_copy, convert_gguf
from src.engine.model_source import ModelSource, resolve_model
from src.settings import Settings
from src.settings_checks import SettingsError

log = logging.getLogger(__name__)

_threads_set = False


def configure_torch_threads(n_threads: int) -> None:
    """Set torch's thread count once per process (oversubscription slows CPU decoding ~10x)."""
    global _threads_set
    import torch

    if _threads_set:
        return
    torch.set_num_threads(n_threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work has started
        pass
    _threads_set = True


@dataclass
class LoadedModel:
    """A model ready to generate: weights, tokenizer, where it runs and how long loading took."""

    name: str
    model: Any
    tokenizer: Any
    device: str
    max_seq_len: int
    load_seconds: float
    converted: bool = False
    eos_token_ids: list[int] = field(default_factory=list)
    weights: str = "float32"  # float32, bfloat16, float16, or int8 (dynamic quantization)
    kv_dtype_bytes: int = 4


def _dtype(settings: Settings, device: str) -> Any:
    import torch

    if settings.torch_dtype == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, settings.torch_dtype)


def weights_dir(source: ModelSource, settings: Settings) -> tuple[str, bool]:
    """The folder to load: the source itself, or a GGUF's safetensors copy (made if missing)."""
    if not source.is_gguf:
        return source.path, False
    cached = cached_copy(source, settings.model_cache_dir)
    if cached is not None:
        return str(cached), False
    return str(convert_gguf(source, settings.model_cache_dir)), True


def load_model(settings: Settings) -> LoadedModel:
    """Resolve --base_model offline, convert a GGUF once, and load it on CPU or CUDA."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    configure_torch_threads(settings.resolved_threads())
    start = time.perf_counter()
    source = resolve_model(settings.base_model)
    path, converted = weights_dir(source, settings)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer_path = path
    if settings.tokenizer_base_model:
        tokenizer_path = resolve_model(settings.tokenizer_base_model).path
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    dtype = _dtype(settings, device)
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    model = model.to(device)
    model.eval()
    weights = str(dtype).removeprefix("torch.")
    if settings.load_8bit:
        model, weights = quantize_int8(model, device), "int8"
    if settings.chat_template:
        tokenizer.chat_template = settings.chat_template
    max_len = settings.max_seq_len or int(getattr(model.config, "max_position_embeddings", 2048))
    eos = model.generation_config.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)
    seconds = time.perf_counter() - start
    log.info("loaded %s on %s in %.1f s%s", source.name, device, seconds,
             " (converted from GGUF)" if converted else "")
    return LoadedModel(source.name, model, tokenizer, device, max_len, seconds, converted, eos_ids,
                       weights, torch.finfo(dtype).bits // 8)


def quantize_int8(model: Any, device: str) -> Any:
    """int8 weights for the Linear layers (torch dynamic quantization: weights stored as int8
    per output channel, activations quantized per step); CPU only, where decoding is
    memory-bound."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    if device != "cpu":
        raise SettingsError("--load_8bit", "int8 weights are implemented for CPU only; on GPU use "
                            "--torch_dtype=bfloat16")
    return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
