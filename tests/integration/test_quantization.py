"""--load_8bit: int8 Linear weights on CPU, through the same registry and backend."""

from __future__ import annotations

import pytest
import torch

from src.engine.registry import build_registry
from src.engine.types import GenerationRequest, SamplingOptions
from src.settings import build_settings


@pytest.fixture(scope="module")
def int8():
    registry = build_registry(build_settings({"load_8bit": True}))
    yield registry.default
    registry.shutdown()


def test_load_8bit_stores_the_linear_weights_as_int8(int8, engine):
    quantized = [m for m in int8.loaded.model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    plain = [m for m in engine.loaded.model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(quantized) == len(plain) > 0
    assert all(m.weight().dtype == torch.qint8 for m in quantized)
    assert int8.loaded.weights == "int8" and engine.loaded.weights == "float32"


def test_an_int8_model_answers_like_the_float32_one_on_an_easy_question(int8, engine):
    request = GenerationRequest(messages=({"role": "user", "content": "What is the capital of France?"},),
                                options=SamplingOptions(max_new_tokens=16))
    texts = ["".join(e.delta for e in backend.submit(request)) for backend in (int8, engine)]
    assert all("Paris" in text for text in texts)
