"""Wire schemas of text-generation-webui's internal API (/v1/internal/*), in its shapes
(its extensions/openai/typing.py): encode, decode, token-count, logits, chat-prompt."""

from __future__ import annotations

from pydantic import Field

from openai_server.protocol import OpenAIBaseModel

MAX_TOP_LOGITS = 1000


class EncodeRequest(OpenAIBaseModel):
    """A text to tokenize (the tokenizer's special tokens added, as for a prompt)."""

    text: str
    model: str | None = Field(None, description="Model id from /v1/models; omitted: the served model.")


class EncodeResponse(OpenAIBaseModel):
    tokens: list[int]
    length: int = Field(description="len(tokens).")


class DecodeRequest(OpenAIBaseModel):
    tokens: list[int] = Field(description="Token ids of the served model's vocabulary.")
    model: str | None = Field(None, description="Model id from /v1/models; omitted: the served model.")


class DecodeResponse(OpenAIBaseModel):
    text: str


class TokenCountResponse(OpenAIBaseModel):
    length: int


class LogitsRequest(OpenAIBaseModel):
    """The next token's most likely texts: the softmax of the logits, or (``use_samplers``)
    what temperature, top_k, top_p and min_p leave, renormalized."""

    prompt: str = Field(min_length=1)
    use_samplers: bool = Field(False, description="Apply the samplers below before ranking.")
    top_logits: int = Field(50, ge=1, le=MAX_TOP_LOGITS, description="How many tokens to return.")
    temperature: float = Field(1.0, ge=0, le=100, description="With use_samplers; 0 is greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="With use_samplers.")
    top_k: int = Field(0, ge=0, le=1_000_000, description="With use_samplers; 0 is off.")
    min_p: float = Field(0.0, ge=0, le=1, description="With use_samplers; 0 is off.")
    model: str | None = Field(None, description="Model id from /v1/models; omitted: the served model.")


class ChatPromptResponse(OpenAIBaseModel):
    prompt: str
