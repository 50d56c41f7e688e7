"""Render chat messages into prompt token ids with the tokenizer's chat template."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Message = dict[str, str]


def render_prompt(
    tokenizer: Any,
    messages: Sequence[Mapping[str, Any]],
    prompt_type: str = "",
    chat_template: str = "",
) -> list[int]:
    """Token ids of ``messages``: templated, or concatenated as plain text for 'plain'.

    A conversation that ends with the assistant's message is continued from its text.
    """
    if prompt_type == "plain" or not (chat_template or getattr(tokenizer, "chat_template", None)):
        text = "\n".join(m["content"] for m in messages if m["content"])
        return list(tokenizer.encode(text, add_special_tokens=True))
    continue_final = bool(messages) and messages[-1].get("role") == "assistant"
    rendered = tokenizer.apply_chat_template(
        [dict(m) for m in messages],
        chat_template=chat_template or None,
        add_generation_prompt=not continue_final,
        continue_final_message=continue_final,  # a trailing assistant message is continued
        tokenize=False,
    )
    return list(tokenizer.encode(rendered, add_special_tokens=False))
