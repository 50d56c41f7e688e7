"""Prompt plus answer within the context window: one rule for every local backend.

A prompt that fills the window is refused. An answer of ``max_new_tokens`` that would not fit
after the prompt is cut to what is left, unless the request is strict
(``GenerationRequest.strict_max_new_tokens``: an OpenAI client set ``max_tokens`` itself),
which is refused with both numbers, in the words of OpenAI and vLLM.
"""

from __future__ import annotations

import dataclasses
import json

from src.engine.types import GenerationRequest
from src.errors import ContextLengthError

#: Tokens a chat template may add around a conversation (a default system prompt, the
#: generation prompt) and around each message (role markers), beyond the text's own bytes.
TEMPLATE_TOKENS = 256
MESSAGE_TOKENS = 16


def fitted_max_new_tokens(prompt_tokens: int, max_new_tokens: int, window: int, strict: bool) -> int:
    """The answer's length for a prompt of ``prompt_tokens`` in a context of ``window``;
    ContextLengthError when the prompt fills it, or (``strict``) the answer does not fit."""
    if prompt_tokens >= window:
        raise ContextLengthError(
            f"This model's maximum context length is {window} tokens. However, your messages "
            f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages.")
    room = window - prompt_tokens
    if max_new_tokens <= room:
        return max_new_tokens
    if strict:
        raise ContextLengthError(
            f"This model's maximum context length is {window} tokens. However, you requested "
            f"{prompt_tokens + max_new_tokens} tokens ({prompt_tokens} in the messages, "
            f"{max_new_tokens} in the completion). Please reduce the length of the messages or "
            f"completion (max_tokens at most {room}).")
    return room


def fitted(request: GenerationRequest, prompt_tokens: int, window: int) -> GenerationRequest:
    """``request`` with its max_new_tokens fitted to the window (the same request when it fits)."""
    options = request.options
    length = fitted_max_new_tokens(prompt_tokens, options.max_new_tokens, window, request.strict_max_new_tokens)
    if length == options.max_new_tokens:
        return request
    return dataclasses.replace(request, options=dataclasses.replace(options, max_new_tokens=length))


def prompt_tokens_at_most(request: GenerationRequest) -> int:
    """A bound on the prompt's tokens that needs no tokenizer: a byte-level tokenizer's token
    is at least one byte (the messages' JSON is longer than their text), and a chat template
    adds a bounded number of tokens."""
    if request.prompt_ids:
        return len(request.prompt_ids)
    text = len((request.prompt or "").encode())
    messages = sum(len(json.dumps(m, default=str).encode()) + MESSAGE_TOKENS for m in request.messages)
    tools = len(json.dumps(list(request.tools), default=str).encode()) if request.tools else 0
    return text + messages + tools + TEMPLATE_TOKENS
