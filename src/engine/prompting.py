"""Render chat messages into prompt token ids with the tokenizer's chat template."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Message = dict[str, str]


def render_prompt(
    tokenizer: Any,
    messages: Sequence[Message],
    prompt_type: str = "",
    chat_template: str = "",
) -> list[int]:
    """Token ids of ``messages``: templated, or concatenated as plain text for 'plain'."""
    if prompt_type == "plain" or not (chat_template or getattr(tokenizer, "chat_template", None)):
        text = "\n".join(m["content"] for m in messages if m["content"])
        return list(tokenizer.encode(text, add_special_tokens=True))
    rendered = tokenizer.apply_chat_template(
        list(messages),
        chat_template=chat_template or None,
        add_generation_prompt=True,
        tokenize=False,
    )
    return list(tokenizer.encode(rendered, add_special_tokens=False))
