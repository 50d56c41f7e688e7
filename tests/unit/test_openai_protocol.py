"""Wire schemas: OpenAI fields first, the generated h2oGPT block after, descriptions written once."""

from __future__ import annotations

from openai_server.app import create_app
from openai_server.protocol import (
    H2OGPT_FIELDS,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Delta,
    Usage,
    wire,
)
from src.params import EvalParams
from src.settings import build_settings
from tests.unit.fake_engine import FakeEngine


def test_openai_fields_come_first_then_the_h2ogpt_block():
    names = list(ChatCompletionRequest.model_fields)
    first_h2ogpt = names.index("chat_id")  # the one extension that is not an evaluate() parameter
    assert names[:first_h2ogpt][-1] in ("top_logprobs", "response_format", "max_completion_tokens")
    assert set(names[first_h2ogpt + 1:]) == set(H2OGPT_FIELDS)


def test_openapi_schema_carries_evalparams_descriptions():
    schema = create_app(build_settings({}), FakeEngine()).openapi()
    props = schema["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    assert props["top_k_docs"]["description"] == EvalParams.model_fields["top_k_docs"].description
    assert "messages" in props and "langchain_mode" in props


def test_wire_shape_drops_unset_usage_and_empty_extensions():
    chunk = ChatCompletionChunk(id="x", created=1, model="m", choices=[
        ChatChunkChoice(index=0, delta=Delta(content="hi")),
    ])
    data = wire(chunk)
    assert "usage" not in data and "system_fingerprint" not in data
    assert data["choices"][0] == {"index": 0, "delta": {"content": "hi"}, "logprobs": None,
                                  "finish_reason": None}
    with_usage = ChatCompletionChunk(id="x", created=1, model="m", choices=[], usage=None)
    assert wire(with_usage)["usage"] is None  # set explicitly: include_usage streams say null
    final = ChatCompletionChunk(id="x", created=1, model="m", choices=[], usage=Usage())
    assert wire(final)["usage"]["total_tokens"] == 0
