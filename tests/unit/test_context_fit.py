"""Prompt plus answer within the context window (src/engine/context_fit.py), and the llama.cpp
backend's cache sizes: pure rules, no model."""

from __future__ import annotations

import pytest

from src.engine.context_fit import fitted, fitted_max_new_tokens, prompt_tokens_at_most
from src.engine.llamacpp_backend import cache_sizes, kv_cache_args
from src.engine.types import GenerationRequest, SamplingOptions
from src.errors import ContextLengthError

SHAPE = {"context_length": 8192, "kv_bytes_per_token": 23040}  # SmolLM2-135M, f16 cache


def test_an_answer_that_fits_is_kept_one_that_does_not_is_cut_unless_strict():
    assert fitted_max_new_tokens(100, 50, 8192, strict=True) == 50
    assert fitted_max_new_tokens(8000, 1024, 8192, strict=False) == 192
    assert fitted_max_new_tokens(8000, 192, 8192, strict=True) == 192


def test_a_strict_answer_beyond_the_window_names_both_numbers():
    with pytest.raises(ContextLengthError) as info:
        fitted_max_new_tokens(8000, 1024, 8192, strict=True)
    error = info.value
    assert error.code == "context_length_exceeded" and error.param == "messages"
    assert "maximum context length is 8192 tokens" in error.message
    assert "you requested 9024 tokens (8000 in the messages, 1024 in the completion)" in error.message


@pytest.mark.parametrize("strict", [True, False])
def test_a_prompt_that_fills_the_window_is_refused_either_way(strict):
    with pytest.raises(ContextLengthError, match="resulted in 8192 tokens"):
        fitted_max_new_tokens(8192, 1, 8192, strict=strict)


def test_fitted_replaces_only_max_new_tokens():
    request = GenerationRequest(prompt="x", options=SamplingOptions(max_new_tokens=500, temperature=0.5))
    assert fitted(request, 10, 8192) is request
    cut = fitted(request, 7900, 8192)
    assert cut.options.max_new_tokens == 292 and cut.options.temperature == 0.5 and cut.prompt == "x"


def test_the_bound_is_never_below_the_real_count():
    from transformers import AutoTokenizer

    from src.engine.loader import weights_dir
    from src.engine.model_source import resolve_model
    from src.settings import build_settings

    settings = build_settings({})  # the packaged GGUF's safetensors copy, made here when missing
    tokenizer = AutoTokenizer.from_pretrained(weights_dir(resolve_model(settings.base_model), settings)[0])
    messages = ({"role": "system", "content": "Be brief. ünïcødé ✓ 中文"},
                {"role": "user", "content": "word " * 300 + "\n\t{}[]"})
    rendered = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
    real = len(rendered["input_ids"] if hasattr(rendered, "keys") else rendered)
    assert 300 < real <= prompt_tokens_at_most(GenerationRequest(messages=messages))
    assert prompt_tokens_at_most(GenerationRequest(prompt_ids=(1, 2, 3))) == 3


def test_llamacpp_one_answer_may_take_the_whole_context_of_a_shared_cache():
    assert cache_sizes(SHAPE, {}, 16, 2.0, None) == (8192, 93184)  # 2 GiB of 23,040-byte tokens
    assert cache_sizes(SHAPE, {}, 16, 0.1, None) == (8192, 8192)  # at least one whole window
    assert cache_sizes(SHAPE, {}, 16, 2.0, 4096) == (4096, 93184)
    assert cache_sizes(SHAPE, {"n_ctx": 2048}, 4, 2.0, None) == (2048, 8192)  # h2oGPT's n_ctx: per sequence
    assert cache_sizes(SHAPE, {}, 16, 3.0, None) == (8192, 139776)  # the default budget: 16 whole windows


def test_llamacpp_counts_the_budget_in_tokens_of_the_cache_type():
    # 2 GiB of q8_0 tokens (23,040 f16 bytes -> 12,240) hold 175,444 tokens: 16 whole windows
    assert cache_sizes(SHAPE, {"cache_type": "q8_0"}, 16, 2.0, None) == (8192, 175360)
    assert cache_sizes(SHAPE, {"cache_type": "q4_0"}, 16, 1.0, None) == (8192, 165632)  # 6,480 bytes a token
    assert cache_sizes(SHAPE, {"cache_type": "f32"}, 16, 2.0, None) == (8192, 46592)
    assert cache_sizes(SHAPE, {"cache_type": "f16"}, 16, 2.0, None) == cache_sizes(SHAPE, {}, 16, 2.0, None)
    assert kv_cache_args(8192, 175360, 16) == ["-c", "131072"]  # q8_0: every slot its window in 2 GiB


def test_llamacpp_splits_the_cache_per_slot_only_when_every_slot_gets_its_whole_window():
    assert kv_cache_args(8192, 139776, 16) == ["-c", "131072"]  # the defaults: per slot, 8,192 each
    assert kv_cache_args(2048, 8192, 4) == ["-c", "8192"]
    assert kv_cache_args(8192, 93184, 16) == ["-c", "93184", "--kv-unified", "--kv-unified-per-slot", "8192"]
