"""Wire schemas of /tokenize and /detokenize, in vLLM's shapes."""

from __future__ import annotations

from pydantic import Field

from openai_server.protocol import ChatMessage, OpenAIBaseModel


class TokenizeCompletionRequest(OpenAIBaseModel):
    """Tokenize a text prompt."""

    model: str | None = Field(None, description="Model id from /v1/models; omitted: the served model.")
    prompt: str
    add_special_tokens: bool = Field(True, description="Add the tokenizer's special tokens (BOS).")
    return_token_strs: bool = Field(False, description="Also return each token as text.")


class TokenizeChatRequest(OpenAIBaseModel):
    """Tokenize chat messages as the model reads them: the chat template applied, with the
    assistant's generation prompt at the end."""

    model: str | None = Field(None, description="Model id from /v1/models; omitted: the served model.")
    messages: list[ChatMessage] = Field(..., min_length=1)
    chat_template: str | None = Field(None, description="A Jinja chat template instead of the model's.")
    return_token_strs: bool = Field(False, description="Also return each token as text.")


TokenizeRequest = TokenizeCompletionRequest | TokenizeChatRequest


class TokenizeResponse(OpenAIBaseModel):
    count: int
    max_model_len: int = Field(description="The model's context window in tokens.")
    tokens: list[int]
    token_strs: list[str] | None = None


class DetokenizeRequest(OpenAIBaseModel):
    model: str | None = Field(None, description="Model id from /v1/models; omitted: the served model.")
    tokens: list[int] = Field(description="Token ids of the served model's vocabulary.")


class DetokenizeResponse(OpenAIBaseModel):
    prompt: str
