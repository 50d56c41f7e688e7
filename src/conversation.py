"""The conversation a backend receives: the one place where h2oGPT's additions are applied.

A request's conversation is either the messages its client sent (the OpenAI-style fronts:
:class:`src.contract.Message`, kept in their order, system messages where they were sent,
images in their turn, tool calls and results with their ids) or h2oGPT's own form
(``system_prompt``, ``chat_conversation``, ``instruction``, ``images``). :func:`compose`
turns either into the OpenAI-shaped chat messages a backend renders its own way, adding:

1. ``system_prompt``: set explicitly, it goes first, before the client's own system
   messages; left to the server (``--system_prompt``), it is used only when the
   conversation has no system message.
2. ``chat_conversation`` given explicitly (h2oGPT's ``extra_body``): those turns go before the
   client's turns (after the leading system messages).
3. Tool and JSON instructions, for a backend that neither takes tools itself nor forwards the
   request to an engine of its own: appended to the first system message (one is added at
   the front when there is none).
4. ``text_context_list`` (given documents, or the chunks document Q&A retrieved): the last
   user message's text is wrapped in h2oGPT's document preamble; its images stay.
5. Content parts: kept as sent for an engine that reads them itself (a remote one); for a
   local backend, text parts alone are joined into one string and images are read into
   bytes parts (``{"type": "image", "image": ...}``) for a vision model.
6. Tool turns: as OpenAI sends them for a backend that renders them itself, else in the
   fallback text format of src/tools.py.

A local chat template that takes only one system message gets them merged inside that
backend (src/engine/prompting.py), not here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from src import tools
from src.contract import ImagePart, Message, TextPart
from src.engine.image_inputs import image_bytes, image_part
from src.engine.types import Capabilities
from src.params import EvalParams

DOCUMENTS_PREAMBLE = (
    "Pay attention and remember the information below, which will help to answer the "
    "question or imperative after the context ends.\n"
)
DOCUMENTS_QUESTION = "According to only the information in the documents above, "
JSON_INSTRUCTION = "Respond only with one valid JSON object, no other text."
SYSTEM_ROLES = ("system", "developer")


def json_instruction(schema: dict[str, Any] | str | None) -> str:
    """The prompt's JSON instruction (a hint for the model; the grammar enforces the format)."""
    if schema is None:
        return JSON_INSTRUCTION
    text = schema if isinstance(schema, str) else json.dumps(schema)
    return f"{JSON_INSTRUCTION} It must match this JSON schema: {text}"


def backend_message(message: Message) -> dict[str, Any]:
    """A contract message in OpenAI's chat shape (what templates and remote engines read)."""
    out: dict[str, Any] = {"role": message.role}
    if isinstance(message.content, list):
        out["content"] = [_part(p) for p in message.content]
    else:
        out["content"] = message.content
    if message.tool_calls:
        out["tool_calls"] = [{"id": c.id, "type": "function",
                              "function": {"name": c.name, "arguments": c.arguments}} for c in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    image: dict[str, Any] = {"url": part.url}
    if part.detail is not None:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def has_images(params: EvalParams, messages: Sequence[Message] | None) -> bool:
    return bool(params.images) or any(m.images() for m in messages or ())


def h2ogpt_messages(params: EvalParams) -> list[dict[str, Any]]:
    """h2oGPT's own conversation: system prompt, earlier turns, the user turn (with ``images``)."""
    messages: list[dict[str, Any]] = []
    if params.system_prompt:
        messages.append({"role": "system", "content": params.system_prompt})
    messages.extend(_turns(params.chat_conversation))
    user = params.user_message()
    if user or params.images or not messages:  # no user turn: answer the system prompt, or continue
        content: Any = user
        if params.images:
            content = [*({"type": "image_url", "image_url": {"url": u}} for u in params.images),
                       {"type": "text", "text": user}]
        messages.append({"role": "user", "content": content})
    return messages


def _turns(conversation: list[Any]) -> list[dict[str, Any]]:
    """h2oGPT's [human, bot] pairs, or {role, content, ...} messages, as chat messages."""
    out: list[dict[str, Any]] = []
    for turn in conversation:
        if isinstance(turn, dict):
            out.append(dict(turn))
            continue
        human, bot = turn
        if human:
            out.append({"role": "user", "content": str(human)})
        if bot:
            out.append({"role": "assistant", "content": str(bot)})
    return out


def client_messages(params: EvalParams, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The client's conversation with ``system_prompt`` and an explicit ``chat_conversation``."""
    sent = [backend_message(m) for m in messages]
    lead = 0
    while lead < len(sent) and sent[lead]["role"] in SYSTEM_ROLES:
        lead += 1
    extra = _turns(params.chat_conversation) if "chat_conversation" in params.model_fields_set else []
    out = sent[:lead] + extra + sent[lead:]
    explicit = "system_prompt" not in params.defaulted and "system_prompt" in params.model_fields_set
    if params.system_prompt and (explicit or lead == 0 and not any(m["role"] in SYSTEM_ROLES for m in out)):
        out.insert(0, {"role": "system", "content": params.system_prompt})
    return out


def _instruction(params: EvalParams, caps: Capabilities) -> str:
    funcs = tools.offered(params.tools, params.tool_choice)
    if funcs and not (caps.native_tools or caps.template_tools):
        return tools.tools_instruction(funcs)
    json_wanted = params.response_format != "text" or params.guided_json is not None
    if not funcs and not caps.passthrough and json_wanted:
        return json_instruction(params.guided_json)
    return ""


def _with_documents(messages: list[dict[str, Any]], documents: list[str]) -> None:
    user = next((m for m in reversed(messages) if m["role"] == "user"), None)
    if user is None:
        user = {"role": "user", "content": ""}
        messages.append(user)
    wrap = f"{DOCUMENTS_PREAMBLE}\"\"\"\n" + "\n\n".join(documents) + f"\n\"\"\"\n{DOCUMENTS_QUESTION}"
    content = user["content"]
    if isinstance(content, list):
        texts = [p for p in content if p.get("type") == "text"]
        question = "\n".join(str(p["text"]) for p in texts)
        user["content"] = [p for p in content if p.get("type") != "text"] + [{"type": "text", "text": wrap + question}]
    else:
        user["content"] = wrap + str(content or "")


def local_content(message: dict[str, Any], allow_fetch: bool = False) -> dict[str, Any]:
    """A message as a local backend reads it: text parts alone joined into one string (chat
    templates concatenate ``content``), images read into bytes parts for a vision model."""
    content = message.get("content")
    if not isinstance(content, list):
        return message
    if all(p.get("type") == "text" for p in content):
        return {**message, "content": "\n".join(str(p.get("text") or "") for p in content)}
    parts = [image_part(image_bytes(str(p["image_url"]["url"]), allow_fetch)) if p.get("type") == "image_url" else p
             for p in content]
    return {**message, "content": parts}


def compose(params: EvalParams, messages: Sequence[Message] | None, caps: Capabilities,
            allow_image_fetch: bool = False) -> list[dict[str, Any]]:
    """The chat messages a backend with ``caps`` receives for ``params`` (defaults filled in)."""
    out = h2ogpt_messages(params) if messages is None else client_messages(params, messages)
    instruction = _instruction(params, caps)
    if instruction:
        first = out[0] if out and out[0]["role"] in SYSTEM_ROLES else None
        if first is not None and isinstance(first.get("content"), str | None):
            out[0] = {**first, "content": f"{first.get('content') or ''}\n{instruction}".strip()}
        else:
            out.insert(0, {"role": "system", "content": instruction})
    if params.text_context_list:
        _with_documents(out, list(params.text_context_list))
    own_tools = caps.native_tools or caps.template_tools
    rendered = [tools.native_history_message(m) if own_tools else tools.render_history_message(m) for m in out]
    if not caps.passthrough:
        rendered = [local_content(m, allow_image_fetch) for m in rendered]
    return rendered


def with_last_user_text(messages: Sequence[Message], text: str) -> list[Message]:
    """``messages`` with the last user message's text replaced (its images kept): document
    Q&A's Summarize and Extract ask their own question of the documents."""
    out = list(messages)
    for i in range(len(out) - 1, -1, -1):
        if out[i].role == "user":
            images: list[TextPart | ImagePart] = list(out[i].images())
            out[i] = Message(role="user", content=[*images, TextPart(text=text)] if images else text)
            break
    return out
