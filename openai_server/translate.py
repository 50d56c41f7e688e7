"""OpenAI requests -> the engine contract: the one place that maps OpenAI's fields onto
evaluate()'s (an :class:`src.contract.EvaluateRequest` per choice).

- ``messages`` travel as the contract's typed conversation (:class:`src.contract.Message`),
  as sent: every system message in its place, ``image_url`` parts in their turn, an
  assistant's ``tool_calls`` with their ids, ``tool`` messages with their ``tool_call_id``.
  The last user message's text is also the ``instruction`` (document Q&A searches with it).
- ``max_completion_tokens`` (else ``max_tokens``, else 256) -> ``max_new_tokens``. One the
  client set is refused (400 ``context_length_exceeded``) when prompt plus answer would not
  fit the context window; the default 256 is cut to fit (:func:`asked_max_tokens`).
- ``temperature`` 0 -> greedy decoding (``do_sample=False``).
- ``stop`` (string or list), ``seed``, ``top_p``, penalties, ``logit_bias`` (token ids as
  strings) map one to one; ``logprobs``/``top_logprobs`` ask the engine for log probs.
- ``n`` choices are ``n`` evaluate() calls; with a fixed seed choice ``i`` uses ``seed + i``
  so that choices differ but a request is still reproducible.
- ``response_format.type`` json_object / json_code -> ``response_format`` (the answer is
  constrained to one JSON object); json_schema -> ``guided_json`` = its ``schema``.
- ``tools``, ``tool_choice``, ``parallel_tool_calls`` map one to one.
- h2oGPT fields (``extra_body``) set explicitly win over values derived from OpenAI
  fields; an explicit ``system_prompt`` and ``chat_conversation`` are applied to the
  conversation by the engine (src/conversation.py says where).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from openai_server.errors import InvalidRequestError
from openai_server.protocol import (
    ChatCompletionFields,
    ChatMessage,
    CompletionFields,
    ImagePart,
    ResponseFormat,
    TextPart,
    h2ogpt_values,
)
from src import contract, tools
from src.params import EvalParams

DEFAULT_MAX_TOKENS = 256


def message_text(message: ChatMessage) -> str:
    """The text of a message (its text parts joined)."""
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    return "\n".join(part.text for part in message.content if not isinstance(part, ImagePart))


def _part(part: TextPart | ImagePart) -> contract.Part:
    if isinstance(part, ImagePart):
        url = part.image_url.get("url")
        if not isinstance(url, str) or not url:
            raise InvalidRequestError("an image_url part needs a url", param="messages")
        detail = part.image_url.get("detail")
        return contract.ImagePart(url=url, detail=str(detail) if detail is not None else None)
    return contract.TextPart(text=part.text)


def _tool_call(raw: dict[str, Any], where: str) -> contract.ToolCall:
    function = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequestError("a tool call needs function.name", param=where)
    arguments = function.get("arguments", "{}")
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return contract.ToolCall(id=str(raw.get("id") or ""), name=function["name"], arguments=text)


def conversation(messages: list[ChatMessage]) -> list[contract.Message]:
    """The OpenAI messages as the contract's typed conversation, in their order."""
    if not messages:
        raise InvalidRequestError("messages must not be empty", param="messages")
    out = []
    for i, m in enumerate(messages):
        content = m.content if m.content is None or isinstance(m.content, str) else [_part(p) for p in m.content]
        calls = [_tool_call(c, f"messages[{i}].tool_calls[{j}]") for j, c in enumerate(m.tool_calls or [])]
        out.append(contract.Message(role=m.role, content=content, name=m.name, tool_calls=calls,
                                    tool_call_id=m.tool_call_id))
    return out


def last_user_text(messages: list[ChatMessage]) -> str:
    """The question: the text of the last message when the user sent it ("" otherwise: the
    conversation ends with the assistant's turn, which the answer continues, or a tool result)."""
    return message_text(messages[-1]) if messages and messages[-1].role == "user" else ""


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


def chat_params(request: ChatCompletionFields) -> list[EvalParams]:
    """The evaluate() parameters of each of the ``n`` choices of a chat request (the
    conversation itself travels beside them: :func:`conversation`)."""
    values = _sampling_values(request, request.max_completion_tokens or request.max_tokens)
    values["instruction"] = last_user_text(request.messages)
    if request.logprobs:
        values.update(logprobs=True, top_logprobs=request.top_logprobs or 0)
    values.update(response_format_values(request.response_format))
    if request.tools:
        tools.offered(request.tools, request.tool_choice)  # a bad tool or tool_choice: 400 now
        values.update(tools=request.tools, tool_choice=request.tool_choice,
                      parallel_tool_calls=request.parallel_tool_calls)
    elif isinstance(request.tool_choice, dict) or request.tool_choice == "required":
        raise InvalidRequestError("tool_choice needs tools", param="tool_choice")
    return _build({**values, **h2ogpt_values(request)}, request.n)


def chat_requests(request: ChatCompletionFields, requester: contract.Requester | None = None
                  ) -> list[contract.EvaluateRequest]:
    """The engine requests of a chat request's choices: parameters, the conversation as sent
    and the client's json_schema response_format (for a remote engine)."""
    messages = conversation(request.messages)
    schema = json_schema_as_sent(request.response_format)
    strict = asked_max_tokens(request)
    return [contract.EvaluateRequest(params=p, messages=messages, requester=requester, json_schema=schema,
                                     strict_max_new_tokens=strict)
            for p in chat_params(request)]


def asked_max_tokens(request: ChatCompletionFields | CompletionFields) -> bool:
    """The client set how many tokens to generate (``max_tokens``, ``max_completion_tokens`` or
    h2oGPT's ``max_new_tokens``): more than the context leaves is refused, not cut to fit."""
    given = request.max_tokens is not None or "max_new_tokens" in h2ogpt_values(request)
    return given or getattr(request, "max_completion_tokens", None) is not None


def json_schema_as_sent(fmt: ResponseFormat | None) -> contract.JsonSchemaFormat | None:
    if fmt is None or fmt.type != "json_schema" or not isinstance((fmt.json_schema or {}).get("schema"), dict):
        return None
    spec = fmt.json_schema or {}
    strict = spec.get("strict")
    description = spec.get("description")
    return contract.JsonSchemaFormat(name=str(spec.get("name") or "output"), schema=spec["schema"],
                                     strict=bool(strict) if strict is not None else None,
                                     description=str(description) if description is not None else None)


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
        out.extend(_build({**values, **explicit}, request.n))
    return out


def finish_reason(reason: str | None) -> str:
    """OpenAI's finish_reason for the engine's ('cancelled' never reaches a client)."""
    return reason if reason in ("length", "tool_calls") else "stop"
