"""Render chat messages into prompt token ids with the tokenizer's chat template.

Every system message is rendered where it was sent; a template that refuses that (one
system message, at the start) gets them merged into one leading message, here.
Tool turns (an assistant's ``tool_calls``, ``tool`` messages) and the offered tools are
rendered with the chat template when it supports tools (:func:`template_takes_tools`), else
in src/tools.py's fallback format (the tools listed in the system prompt, the turns as
``<tool_call>`` / ``<tool_response>`` text).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import jinja2.meta

from src import tools as tool_format

Message = dict[str, str]


@functools.lru_cache(maxsize=64)
def _references_tools(source: str) -> bool:
    """The Jinja template reads a variable ``tools`` it does not set itself (what Hugging
    Face passes ``apply_chat_template(tools=...)`` as); a mention in text or a comment does not count."""
    env = jinja2.Environment(extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do"])
    try:
        return "tools" in jinja2.meta.find_undeclared_variables(env.parse(source))
    except jinja2.TemplateSyntaxError:
        return False


def template_source(tokenizer: Any, chat_template: str = "") -> str:
    """The template text ``apply_chat_template`` would use with tools: ``chat_template``, else
    the tokenizer's (its ``tool_use`` template when it has named ones)."""
    template = chat_template or getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        template = template.get("tool_use") or template.get("default") or ""
    return str(template)


def template_takes_tools(tokenizer: Any, chat_template: str = "") -> bool:
    """Whether the chat template renders tools (it references the ``tools`` variable)."""
    source = template_source(tokenizer, chat_template)
    return bool(source) and _references_tools(source)


def render_prompt(
    tokenizer: Any,
    messages: Sequence[Mapping[str, Any]],
    prompt_type: str = "",
    chat_template: str = "",
    tools: Sequence[Mapping[str, Any]] = (),
) -> list[int]:
    """Token ids of ``messages``: templated, or concatenated as plain text for 'plain'.

    ``tools``: the offered functions as OpenAI tools ({type: function, function: {...}}).
    A conversation that ends with the assistant's message is continued from its text.
    """
    templated = prompt_type != "plain" and bool(template_source(tokenizer, chat_template))
    native = templated and template_takes_tools(tokenizer, chat_template)
    if native:
        rendered_messages = [tool_format.template_message(dict(m)) for m in messages]
    else:
        funcs = [dict(t["function"]) for t in tools if isinstance(t.get("function"), Mapping)]
        rendered_messages = tool_format.fallback_messages([dict(m) for m in messages], funcs)
    if not templated:
        text = "\n".join(m["content"] for m in rendered_messages if m["content"])
        return list(tokenizer.encode(text, add_special_tokens=True))
    continue_final = bool(rendered_messages) and rendered_messages[-1].get("role") == "assistant"

    def apply(chat: list[dict[str, Any]]) -> str:
        return str(tokenizer.apply_chat_template(
            chat,
            tools=[dict(t) for t in tools] if native and tools else None,
            chat_template=chat_template or None,
            add_generation_prompt=not continue_final,
            continue_final_message=continue_final,  # a trailing assistant message is continued
            tokenize=False,
        ))

    try:
        rendered = apply(rendered_messages)
    except jinja2.TemplateError:
        merged = merged_system(rendered_messages)
        if merged == rendered_messages:
            raise
        rendered = apply(merged)  # a template that takes one leading system message
    return list(tokenizer.encode(rendered, add_special_tokens=False))


def merged_system(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The messages with every text system message merged into one at the front (in their
    order), for a chat template that refuses a system message anywhere else."""
    systems = [m for m in messages if m.get("role") == "system" and isinstance(m.get("content"), str | None)]
    if len(systems) < 2 and (not systems or messages[0] is systems[0]):
        return [dict(m) for m in messages]
    text = "\n".join(str(m.get("content") or "") for m in systems if m.get("content"))
    return [{"role": "system", "content": text}, *(dict(m) for m in messages if m not in systems)]
