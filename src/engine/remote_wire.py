"""The OpenAI wire format of a remote engine: request bodies out, stream chunks in.

Pure functions, no I/O, so the translation is unit-tested without a server
(tests/unit/test_remote_wire.py) and proven end to end against vLLM and a second instance
of this product (tests/remote/).

- Sampling options are forwarded under OpenAI's names, vLLM's extensions (``top_k``,
  ``min_p``, ``repetition_penalty``, ``min_tokens``) beside them, and the other samplers
  (``typical_p``, ``mirostat``, ...) by their own names. A request built from an OpenAI call
  forwards only the options its caller set (``GenerationRequest.explicit``), so the remote
  applies its own defaults, as calling it directly would.
- Output constraints: vLLM's ``structured_outputs``; OpenAI's ``response_format`` for JSON
  (the client's own json_schema format as it sent it) and h2oGPT's ``guided_*`` fields for
  the others on other servers. llama.cpp's dialect (GBNF grammars, its option names) is its
  backend's own subclass of :class:`WireDialect`.
- Tool calls come back as OpenAI ``tool_calls`` deltas and become the contract's typed
  :class:`ToolCallDelta` s with the remote's own ids; nothing is rendered to text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from src import tools
from src.engine.remote_spec import RemoteSpec
from src.engine.types import (
    FinishReason,
    GenerationRequest,
    JsonSchemaFormat,
    Message,
    OutputConstraint,
    SamplingOptions,
    TokenLogprob,
    ToolCallDelta,
)
from src.errors import UnsupportedFeatureError

#: SamplingOptions field -> the remote's body field (None: handled apart).
_OPTION_FIELDS = {
    "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
    "repetition_penalty": "repetition_penalty", "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty", "seed": "seed", "min_new_tokens": "min_tokens",
}
_NEUTRAL: dict[str, Any] = {"top_k": 0, "repetition_penalty": 1.0, "presence_penalty": 0.0,
                            "frequency_penalty": 0.0, "min_new_tokens": 0, "top_p": 1.0}


def ends_with_assistant(messages: Sequence[Message]) -> bool:
    """The chat ends with the assistant's message, which the answer continues."""
    return bool(messages) and messages[-1].get("role") == "assistant"


def plain_text(messages: Any) -> str:
    """Messages as one plain text (the 'plain' prompt type, and text-completion remotes)."""
    return "\n".join(str(m.get("content") or "") for m in messages if m.get("content"))


def tool_fields(request: GenerationRequest) -> dict[str, Any]:
    if not request.tools:
        return {}
    body: dict[str, Any] = {"tools": list(request.tools)}
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    return body


class WireDialect:
    """OpenAI's wire format as vLLM and other OpenAI-compatible servers read it. A backend
    whose engine speaks it differently subclasses it (llama.cpp's: src/engine/llamacpp_backend.py)."""

    def __init__(self, spec: RemoteSpec) -> None:
        self.spec = spec

    def uses_chat(self, request: GenerationRequest) -> bool:
        """Chat completions for chat messages on a chat remote (unless 'plain' is asked for)."""
        return self.spec.chat and bool(request.messages) and request.prompt_type != "plain"

    def sampling_fields(self, options: SamplingOptions, explicit: frozenset[str] | None) -> dict[str, Any]:
        """The body's sampling fields: what the caller set (all of them when ``explicit`` is None)."""
        def wanted(name: str) -> bool:
            return explicit is None or name in explicit

        body: dict[str, Any] = {"max_tokens": options.max_new_tokens}
        for name, key in _OPTION_FIELDS.items():
            value = getattr(options, name)
            if not wanted(name) or (explicit is None and name in _NEUTRAL and value == _NEUTRAL[name]):
                continue
            if (name == "seed" and not value) or value is None:
                continue
            body[key] = value
        body.update(options.samplers)  # evaluate() let through only those the backend declares
        if wanted("temperature") and not options.sampling:
            body["temperature"] = 0.0
        if options.stop:
            body["stop"] = list(options.stop)
        if options.logit_bias:
            body["logit_bias"] = {str(token): bias for token, bias in options.logit_bias}
        return body

    def logprob_fields(self, options: SamplingOptions, chat: bool) -> dict[str, Any]:
        if options.logprobs is None:
            return {}
        if chat:
            return {"logprobs": True, "top_logprobs": options.logprobs}
        return {"logprobs": options.logprobs}

    def constraint_fields(self, constraint: OutputConstraint | None,
                          as_sent: JsonSchemaFormat | None = None) -> dict[str, Any]:
        """The remote's fields for an output constraint (vLLM's or OpenAI's dialect);
        ``as_sent``: the client's own json_schema response_format, forwarded as it was."""
        if constraint is None:
            return {}
        kind, value = constraint.kind, constraint.value
        if kind == "tool_call":  # remote engines get OpenAI tools (native_tools)
            raise UnsupportedFeatureError(f"{self.spec} takes tools natively", param="tools")
        if self.spec.vllm:  # vLLM's structured_outputs: json, json_object, regex, choice, grammar
            vllm_value = {"json_object": True, "choice": list(value or ())}.get(kind, value)
            return {"structured_outputs": {"json" if kind == "json_schema" else kind: vllm_value}}
        if kind == "json_object":
            return {"response_format": {"type": "json_object"}}
        if kind == "json_schema":
            if as_sent is not None:
                return {"response_format": {"type": "json_schema", "json_schema": msgspec.to_builtins(as_sent)}}
            return {"response_format": {"type": "json_schema",
                                        "json_schema": {"name": "output", "schema": value, "strict": True}}}
        return {f"guided_{kind}": list(value) if kind == "choice" else value}

    def request_body(self, request: GenerationRequest, model: str,
                     prompt_ids: list[int] | str | None = None) -> tuple[str, dict[str, Any]]:
        """(path under /v1, JSON body) of a streamed request. ``prompt_ids``: the prompt (token
        ids, or text) when the caller rendered chat messages for a text completion."""
        spec, options = self.spec, request.options
        chat = self.uses_chat(request)
        body: dict[str, Any] = {"model": model, "stream": True, "stream_options": {"include_usage": True}}
        body.update(self.sampling_fields(options, request.explicit))
        body.update(self.logprob_fields(options, chat))
        body.update(self.constraint_fields(request.constraint, request.json_schema))
        if chat:
            body["messages"] = [dict(m) for m in request.messages]
            body.update(tool_fields(request))
            if request.chat_template:
                if not spec.vllm:
                    raise UnsupportedFeatureError(f"the inference server {spec} takes no chat_template",
                                                  param="chat_template")
                body["chat_template"] = request.chat_template
            return "/chat/completions", body
        if request.tools:
            raise UnsupportedFeatureError(f"tools need a chat inference server; {spec} does text completions",
                                          param="tools")
        if prompt_ids is not None:
            body["prompt"] = prompt_ids
        elif request.prompt_ids:
            body["prompt"] = list(request.prompt_ids)
        elif request.messages:
            body["prompt"] = plain_text(request.messages)
        else:
            body["prompt"] = request.prompt or ""
        return "/completions", body


@dataclass
class ChunkReader:
    """Turns a remote's stream chunks into (text delta, log probs, tool-call deltas, finish reason).

    Tool-call deltas keep the remote's ids and indexes; usage (the last chunk, with
    ``include_usage``) fills the token counts. ``wrap_call``: the answer is one call's JSON
    (``{"name", "arguments"}``, what a ``tool_call`` constraint asks of llama.cpp), held and
    emitted as that call when it is complete.
    """

    chat: bool
    top_logprobs: int | None = None  # alternatives to keep per token (None: all sent)
    wrap_call: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stop_sequence: str | None = None  # vLLM's ``stop_reason``: the stop string that ended it
    usage_seen: bool = False
    held: str = ""

    def read(self, chunk: Mapping[str, Any]) -> tuple[str, list[TokenLogprob], list[ToolCallDelta], str | None]:
        usage = chunk.get("usage")
        if isinstance(usage, Mapping) and usage.get("completion_tokens") is not None:
            self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.completion_tokens = int(usage["completion_tokens"])
            self.usage_seen = True
        choices = chunk.get("choices") or []
        if not choices:
            return "", [], [], None
        choice = choices[0]
        finish = choice.get("finish_reason")
        if finish == "stop" and isinstance(choice.get("stop_reason"), str):
            self.stop_sequence = choice["stop_reason"]
        calls: list[ToolCallDelta] = []
        if self.chat:
            delta = choice.get("delta") or {}
            text = str(delta.get("content") or "")
            calls = [tool_call_delta(c) for c in delta.get("tool_calls") or [] if isinstance(c, Mapping)]
            logprobs = _chat_logprobs(choice.get("logprobs"))
            if self.top_logprobs is not None:
                logprobs = [TokenLogprob(lp.token, lp.logprob, lp.top[:self.top_logprobs]) for lp in logprobs]
        else:
            text = str(choice.get("text") or "")
            logprobs = _completion_logprobs(choice.get("logprobs"))
        if self.wrap_call:
            self.held += text
            text = ""
            if finish is not None:
                call = whole_call(self.held)
                if call is None:
                    text = self.held  # not a complete call (cut by max_tokens): the text as is
                else:
                    calls.append(call)
        if (text or logprobs or calls) and not self.usage_seen:
            self.completion_tokens += max(1, len(logprobs))
        return text, logprobs, calls, finish


def tool_call_delta(raw: Mapping[str, Any]) -> ToolCallDelta:
    """An OpenAI stream's tool-call delta (or a whole call) as the contract's, id kept."""
    function = raw.get("function") or {}
    name = function.get("name") if isinstance(function, Mapping) else None
    arguments = function.get("arguments") if isinstance(function, Mapping) else None
    return ToolCallDelta(index=int(raw.get("index") or 0), id=str(raw["id"]) if raw.get("id") else None,
                         name=str(name) if name else None,
                         arguments=arguments if isinstance(arguments, str) else json.dumps(arguments or {})
                         if arguments is not None else "")


def whole_call(text: str) -> ToolCallDelta | None:
    """A call's JSON ({"name", "arguments"}) as the first (and only) call of an answer, with
    an id of ours (llama.cpp answered the JSON, not a tool call); None if it is not one."""
    try:
        call = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(call, dict) or "name" not in call:
        return None
    arguments = json.dumps(call.get("arguments", {}))
    return ToolCallDelta(index=0, id=tools.new_call_id(), name=str(call["name"]), arguments=arguments)


def _chat_logprobs(raw: Any) -> list[TokenLogprob]:
    if not isinstance(raw, Mapping):
        return []
    return [TokenLogprob(str(item.get("token", "")), float(item.get("logprob", 0.0)),
                         tuple((str(t.get("token", "")), float(t.get("logprob", 0.0)))
                               for t in item.get("top_logprobs") or []))
            for item in raw.get("content") or []]


def _completion_logprobs(raw: Any) -> list[TokenLogprob]:
    if not isinstance(raw, Mapping):
        return []
    tokens = raw.get("tokens") or []
    values = raw.get("token_logprobs") or []
    tops = raw.get("top_logprobs") or [None] * len(tokens)
    return [TokenLogprob(str(token), float(value or 0.0),
                         tuple((str(k), float(v)) for k, v in (top or {}).items()))
            for token, value, top in zip(tokens, values, tops, strict=False)]


FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "tool_calls": "stop",
                                   "function_call": "stop", "abort": "cancelled", "content_filter": "stop"}


def finish_reason(remote: str) -> FinishReason:
    """Ours for a remote's finish reason (an answer that called tools is a "stop" whose tool
    calls came as events: evaluate() reports it as ``tool_calls``)."""
    return FINISH.get(remote, "stop")
