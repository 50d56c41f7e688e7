"""OpenAI requests -> EvalParams: the one place that maps OpenAI's fields onto evaluate().

- ``messages``: system (and developer) messages become ``system_prompt``; the last user
  (or tool) message becomes ``instruction``; the turns between become
  ``chat_conversation`` as {role, content} messages; ``image_url`` parts become ``images``.
- ``max_completion_tokens`` (else ``max_tokens``, else 256) -> ``max_new_tokens``.
- ``temperature`` 0 -> greedy decoding (``do_sample=False``).
- ``stop`` (string or list), ``seed``, ``top_p``, penalties, ``logit_bias`` (token ids as
  strings) map one to one; ``logprobs``/``top_logprobs`` ask the engine for log probs.
- ``n`` choices are ``n`` evaluate() calls; with a fixed seed choice ``i`` uses ``seed + i``
  so that choices differ but a request is still reproducible.
- ``response_format.type`` json_object / json_code -> ``response_format`` (the answer is
  constrained to one JSON object); json_schema -> ``guided_json`` = its ``schema``.
- ``tools``, ``tool_choice``, ``parallel_tool_calls`` map one to one; assistant
  ``tool_calls`` and ``tool`` messages stay in ``chat_conversation`` with their ids.
- h2oGPT fields (``extra_body``) set explicitly win over values derived from OpenAI
  fields; an explicit ``chat_conversation`` goes before the turns from ``messages``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from openai_server.errors import InvalidRequestError
from openai_server.protocol import (
    ChatCompletionFields,
    ChatMessage,
    CompletionFields,
    ImagePart,
    ResponseFormat,
    h2ogpt_values,
)
from src import tools
from src.params import EvalParams

DEFAULT_MAX_TOKENS = 256
SYSTEM_ROLES = ("system", "developer")


def message_text(message: ChatMessage) -> str:
    """The text of a message (its image parts are taken by :func:`message_images`)."""
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    return "\n".join(part.text for part in message.content if not isinstance(part, ImagePart))


def message_images(messages: list[ChatMessage]) -> list[str]:
    """The ``image_url.url`` of every image part, in order; they go with the last user turn.

    The engine reads data: URIs, fetches http(s) URLs only with --allow_image_url_fetch,
    and refuses images for a model that reads text only.
    """
    urls = []
    for message in messages:
        if isinstance(message.content, list):
            for part in message.content:
                if isinstance(part, ImagePart):
                    url = part.image_url.get("url")
                    if not isinstance(url, str) or not url:
                        raise InvalidRequestError("an image_url part needs a url", param="messages")
                    urls.append(url)
    return urls


def history_turn(message: ChatMessage) -> dict[str, Any]:
    """A turn of ``chat_conversation``: role and content, plus an assistant's ``tool_calls``
    or a tool result's ``tool_call_id`` and ``name`` (rendered by evaluate())."""
    turn: dict[str, Any] = {"role": message.role, "content": message_text(message)}
    if message.role == "assistant" and message.tool_calls:
        turn["tool_calls"] = message.tool_calls
    if message.role == "tool":
        turn.update({k: v for k, v in (("tool_call_id", message.tool_call_id), ("name", message.name)) if v})
    return turn


def split_messages(messages: list[ChatMessage]) -> tuple[str | None, list[dict[str, Any]], str]:
    """(system_prompt or None, earlier turns, instruction) of an OpenAI messages array.

    As OpenAI does, a conversation may end with the assistant's message (the model
    continues that turn: the instruction is empty and the message ends the history) or
    hold only system messages.
    """
    if not messages:
        raise InvalidRequestError("messages must not be empty", param="messages")
    system = [message_text(m) for m in messages if m.role in SYSTEM_ROLES]
    turns = [m for m in messages if m.role not in SYSTEM_ROLES]
    history = [history_turn(m) for m in turns]
    instruction = ""
    if history and history[-1]["role"] == "user":
        instruction = history.pop()["content"]
    system_prompt = "\n".join(s for s in system if s) if system else None
    return system_prompt, history, instruction


def _logit_bias(bias: dict[str, float] | None) -> dict[int, float]:
    if not bias:
        return {}
    try:
        return {int(token): float(value) for token, value in bias.items()}
    except ValueError:
        raise InvalidRequestError("logit_bias keys must be token ids", param="logit_bias") from None


def _sampling_values(request: ChatCompletionFields | CompletionFields, max_tokens: int | None) -> dict[str, Any]:
    stop = request.stop
    values: dict[str, Any] = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed or 0,
        "stop": [stop] if isinstance(stop, str) else list(stop or []),
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "logit_bias": _logit_bias(request.logit_bias),
        "max_new_tokens": max_tokens or DEFAULT_MAX_TOKENS,
        "stream_output": request.stream,
    }
    if request.temperature == 0:
        values["do_sample"] = False
    if request.min_tokens:
        values["min_new_tokens"] = request.min_tokens
    return values


def _build(values: dict[str, Any], n: int) -> list[EvalParams]:
    """One EvalParams per choice; a parameter error becomes a 400."""
    out = []
    for i in range(n):
        choice = dict(values)
        if n > 1 and choice.get("seed"):
            choice["seed"] = choice["seed"] + i
        try:
            out.append(EvalParams.model_validate(choice))
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first.get("loc", ())) or None
            message = str(first.get("msg", "invalid parameters")).removeprefix("Value error, ")
            raise InvalidRequestError(f"{param}: {message}" if param else message, param=param) from None
    return out


def _merge_h2ogpt(values: dict[str, Any], explicit: dict[str, Any]) -> dict[str, Any]:
    explicit = dict(explicit)
    if "chat_conversation" in explicit:
        explicit["chat_conversation"] = list(explicit["chat_conversation"]) + list(
            values.get("chat_conversation", [])
        )
    return {**values, **explicit}


def chat_params(request: ChatCompletionFields) -> list[EvalParams]:
    """The evaluate() parameters of each of the ``n`` choices of a chat request."""
    system_prompt, history, instruction = split_messages(request.messages)
    values = _sampling_values(request, request.max_completion_tokens or request.max_tokens)
    values.update(instruction=instruction, chat_conversation=history)
    images = message_images(request.messages)
    if images:
        values["images"] = images
    if system_prompt is not None:
        values["system_prompt"] = system_prompt
    if request.logprobs:
        values.update(logprobs=True, top_logprobs=request.top_logprobs or 0)
    values.update(response_format_values(request.response_format))
    if request.tools:
        tools.offered(request.tools, request.tool_choice)  # a bad tool or tool_choice: 400 now
        values.update(tools=request.tools, tool_choice=request.tool_choice,
                      parallel_tool_calls=request.parallel_tool_calls)
    elif isinstance(request.tool_choice, dict) or request.tool_choice == "required":
        raise InvalidRequestError("tool_choice needs tools", param="tool_choice")
    return _build(_merge_h2ogpt(values, h2ogpt_values(request)), request.n)


def response_format_values(fmt: ResponseFormat | None) -> dict[str, Any]:
    """EvalParams of a ``response_format``: json_schema's ``schema`` becomes ``guided_json``
    (enforced whether or not ``strict`` is set: the grammar is the only way we answer)."""
    if fmt is None or fmt.type == "text":
        return {}
    if fmt.type == "json_code":
        return {"response_format": "json_code"}
    if fmt.type == "json_object":
        return {"response_format": "json_object"}
    spec = fmt.json_schema or {}
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            "response_format json_schema needs json_schema.schema, a JSON schema object",
            param="response_format.json_schema.schema",
        )
    return {"response_format": "json_object", "guided_json": schema}


def completion_prompts(request: CompletionFields) -> list[str]:
    return [request.prompt] if isinstance(request.prompt, str) else list(request.prompt)


def completion_params(request: CompletionFields) -> list[EvalParams]:
    """The evaluate() parameters of each choice: prompt ``p``'s choice ``j`` is at ``p * n + j``."""
    explicit = h2ogpt_values(request)
    out: list[EvalParams] = []
    for prompt in completion_prompts(request):
        values = _sampling_values(request, request.max_tokens)
        values["instruction"] = prompt
        if request.logprobs is not None:
            values.update(logprobs=True, top_logprobs=request.logprobs)
        out.extend(_build(_merge_h2ogpt(values, explicit), request.n))
    return out


def finish_reason(reason: str | None) -> str:
    """OpenAI's finish_reason for the engine's ('cancelled' never reaches a client)."""
    return "length" if reason == "length" else "stop"
