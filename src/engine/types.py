"""Typed requests and events that cross the Backend interface (src/engine/backend.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from src.contract import JsonSchemaFormat
from src.contract import TokenLogprob as TokenLogprob  # the contract's, used by the backends
from src.contract import ToolCallDelta as ToolCallDelta

FinishReason = Literal["stop", "length", "cancelled"]
ConstraintKind = Literal["json_schema", "json_object", "regex", "choice", "grammar", "tool_call"]
Message = Mapping[str, Any]  # {"role": ..., "content": ...}

#: A per-sequence logits processor: (ids generated so far, this sequence's logits [vocab])
#: -> logits. The transformers backend runs a request's list in order at every step; the
#: structured-output work hooks grammar masks in here.
SequenceProcessor = Callable[[Sequence[int], Any], Any]


@dataclass(frozen=True)
class SamplingOptions:
    """How to pick tokens. temperature 0 (or do_sample False) means greedy decoding."""

    max_new_tokens: int = 256
    min_new_tokens: int = 0
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float | None = None  # None: the engine's default (llama.cpp's 0.05; off here)
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int = 0
    logit_bias: tuple[tuple[int, float], ...] = ()
    logprobs: int | None = None  # None: off; k: each token's log prob and the k most likely
    do_sample: bool | None = None
    stop: tuple[str, ...] = ()
    max_time: float | None = None
    #: Other samplers by name (src/params.py EXTRA_SAMPLERS), for a backend that declares them.
    samplers: tuple[tuple[str, bool | int | float], ...] = ()

    @property
    def sampling(self) -> bool:
        if self.do_sample is not None:
            return self.do_sample and self.temperature > 0
        return self.temperature > 0


@dataclass(frozen=True)
class OutputConstraint:
    """A declarative constraint on the output, compiled by a backend that supports it and
    forwarded as is by a remote one. ``value``: a JSON schema (dict), a regex, a list of
    choices or a grammar text, as ``kind`` says (vLLM's guided_* meanings); for
    ``tool_call``, ``{"functions": [...], "required": bool, "parallel": bool}``: a
    ``<tool_call>`` of one of the functions (src/tools.py), or (``parallel``) one or more
    separated by newlines, or (not required) plain text instead."""

    kind: ConstraintKind
    value: Any = None


@dataclass(frozen=True)
class GenerationRequest:
    """What to continue, and how.

    Exactly one of ``messages`` (chat messages, rendered by the backend with the model's
    chat template, or as plain text for ``prompt_type='plain'``), ``prompt`` (text) and
    ``prompt_ids`` (token ids of the backend's own tokenizer) is set.
    """

    prompt_ids: tuple[int, ...] = ()
    options: SamplingOptions = field(default_factory=SamplingOptions)
    messages: tuple[Message, ...] = ()
    prompt: str | None = None
    prompt_type: str = ""
    chat_template: str = ""
    constraint: OutputConstraint | None = None
    logits_processors: tuple[SequenceProcessor, ...] = ()
    #: The SamplingOptions fields the caller set; None: all of them. A remote engine that
    #: applies its own defaults (Capabilities.passthrough) is sent only these.
    explicit: frozenset[str] | None = None
    #: OpenAI tools, for a backend that calls them natively (Capabilities.native_tools), or
    #: the offered functions as OpenAI tools for one that renders them into the prompt
    #: itself (Capabilities.template_tools); other backends get them as a prompt from evaluate().
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    #: The client's json_schema ``response_format`` (its name, strict), for an engine that
    #: takes it as sent (a remote one); the schema itself is ``constraint``'s.
    json_schema: JsonSchemaFormat | None = None
    #: ``options.max_new_tokens`` beyond what the context window leaves after the prompt is
    #: refused (ContextLengthError) rather than cut to fit (src/engine/context_fit.py).
    strict_max_new_tokens: bool = False


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; a request asking for more is refused up front (400)."""

    logprobs: bool = True
    logit_bias: bool = True
    constrained_decoding: bool = False
    logits_processors: bool = False
    vision: bool = False
    tools: bool = False
    #: Takes ``GenerationRequest.tools`` as they are (a remote engine's own tool format).
    native_tools: bool = False
    #: Renders tool turns and ``GenerationRequest.tools`` into the prompt itself: with the
    #: chat template when it supports tools, else in src/tools.py's fallback format; the
    #: answer is still constrained by the ``tool_call`` constraint.
    template_tools: bool = False
    #: Forwards requests to an engine with its own defaults and prompt handling: evaluate()
    #: adds no JSON or tool instructions to the prompt and sends only the options set.
    passthrough: bool = False
    #: The samplers of ``SamplingOptions.samplers`` it honours; any other is refused (400).
    samplers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TokenEvent:
    """One step of a generation: new text, tokens so far, and why it ended (last event only).

    The first event of every request has empty text and no completion tokens: the engine
    has taken the request off its queue and started it, so no queue timeout can follow.
    """

    delta: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason | None = None
    logprobs: tuple[TokenLogprob, ...] = ()
    #: Tool-call pieces, from an engine that calls tools itself (remote ones, llama.cpp),
    #: with that engine's ids.
    tool_calls: tuple[ToolCallDelta, ...] = ()
    #: On a last event that ended at one of the request's stop strings: that string.
    stop_sequence: str | None = None


