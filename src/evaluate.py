"""evaluate(): the single entry for the UI, the OpenAI workers and the CLI.

``Evaluator(settings, registry).evaluate(params, messages=...)`` turns :class:`EvalParams`
(and the conversation the client sent, when it sent one) into a stream of
:class:`EvalChunk`: the conversation is composed in src/conversation.py (h2oGPT's system
prompt, earlier turns and documents applied there), and the engine's token events are passed
on as text deltas and typed tool-call deltas, with token counts and, on the last chunk, the
finish reason (``tool_calls`` when the answer called tools). The model is the registry's backend that ``params.visible_models``
names (the first served one by default). When the model's answer streams, the first chunk has an empty delta
and comes as soon as the engine starts the answer (after any wait in its queue, before
the prompt is read), so a server can start its response without waiting for the first
token.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from src import tools
from src.contract import (
    EvalEvent,
    FinishReason,
    JsonSchemaFormat,
    Message,
    Source,
    TokenLogprob,
    ToolCallDelta,
)
from src.conversation import compose, has_images, with_last_user_text
from src.docqa.answer import DocPlan, DocumentAnswerer, Step
from src.engine.backend import Backend, Handle
from src.engine.registry import ModelRegistry
from src.engine.types import (
    Capabilities,
    GenerationRequest,
    OutputConstraint,
    SamplingOptions,
    TokenEvent,
)
from src.errors import UnsupportedFeatureError, UnsupportedParameterError
from src.params import EXTRA_SAMPLERS, EvalParams
from src.settings import Settings
from src.tools import ToolCallStream

if TYPE_CHECKING:
    from src.docqa.collections import Requester
    from src.docqa.service import DocumentService
    from src.metrics import AnswerObserver

log = logging.getLogger(__name__)

JSON_FENCE = ("```json\n", "\n```")  # around a json_code answer


@dataclass
class EvalChunk:
    """One step of an answer, in the engine process: the contract's event (src/contract/
    :class:`EvalEvent`, what crosses the IPC: :meth:`event`) plus ``response``, the answer so
    far, for the in-process consumers (the UI, the CLI). ``finish_reason`` is set on the last
    chunk only."""

    delta: str
    response: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    stop_sequence: str | None = None
    model: str | None = None  # on the first chunk: the backend's name (EvalEvent.model)

    def event(self) -> EvalEvent:
        return EvalEvent(
            delta=self.delta, tool_calls=self.tool_calls, logprobs=self.logprobs,
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            finish_reason=FinishReason(self.finish_reason) if self.finish_reason else None,
            sources=[msgspec.convert(s, Source) for s in self.sources] if self.sources else [],
            stop_sequence=self.stop_sequence, model=self.model,
        )


def sampling_options(params: EvalParams) -> SamplingOptions:
    """The engine's options for a request whose defaults are already filled in."""
    assert params.max_new_tokens is not None and params.temperature is not None
    return SamplingOptions(
        max_new_tokens=params.max_new_tokens,
        min_new_tokens=params.min_new_tokens or 0,
        temperature=params.temperature,
        top_p=params.top_p if params.top_p is not None else 1.0,
        top_k=params.top_k or 0,
        min_p=params.min_p,
        repetition_penalty=params.repetition_penalty or 1.0,
        presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty,
        seed=params.seed or 0,
        logit_bias=tuple(sorted(params.logit_bias.items())),
        logprobs=params.top_logprobs if params.logprobs else None,
        do_sample=params.do_sample,
        stop=tuple(params.stop),
        max_time=params.max_time,
        samplers=tuple(sorted(params.samplers.items())),
    )


def output_constraint(params: EvalParams, native_tools: bool = False) -> OutputConstraint | None:
    """The constraint ``params`` ask for: a guided_* field, else JSON for a JSON response_format;
    a tool call's grammar unless the backend calls tools natively."""
    funcs = tools.offered(params.tools, params.tool_choice)
    if funcs and native_tools:
        return None
    if funcs:
        return OutputConstraint("tool_call", {"functions": funcs,
                                              "required": tools.must_call(params.tools, params.tool_choice),
                                              "parallel": tools.parallel(params.tool_choice,
                                                                         params.parallel_tool_calls)})
    if params.guided_json is not None:
        return OutputConstraint("json_schema", params.guided_json)
    if params.guided_regex is not None:
        return OutputConstraint("regex", params.guided_regex)
    if params.guided_choice is not None:
        return OutputConstraint("choice", tuple(params.guided_choice))
    if params.guided_grammar is not None:
        return OutputConstraint("grammar", params.guided_grammar)
    if params.response_format != "text":
        return OutputConstraint("json_object")
    return None


#: The SamplingOptions fields that sampling_options() fills from an EvalParams field of
#: another name; the others come from the field of the same name.
PARAM_OF_OPTION = {"logprobs": "top_logprobs"}


def explicit_options(params: EvalParams) -> frozenset[str]:
    """The SamplingOptions the caller set (not filled in from the server's defaults)."""
    names = ((f.name, PARAM_OF_OPTION.get(f.name, f.name)) for f in dataclasses.fields(SamplingOptions))
    return frozenset(option for option, name in names
                     if name not in params.defaulted and getattr(params, name, None) is not None)


class Evaluator:
    """Binds evaluate() to the settings (defaults), the model registry and the documents."""

    def __init__(self, settings: Settings, registry: ModelRegistry, docs: DocumentService | None = None,
                 observer: AnswerObserver | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.docs = docs
        self.observer = observer  # sees every answer (src/metrics.py)

    def backend(self, params: EvalParams, messages: Sequence[Message] | None = None) -> Backend:
        """The model ``params`` asks for (``visible_models``); raises UnknownModelError, and
        UnsupportedFeatureError for images given to a model that reads text only."""
        return self.checked_backend(self.registry.get(params.visible_models), params, messages)

    @staticmethod
    def checked_backend(backend: Backend, params: EvalParams, messages: Sequence[Message] | None = None) -> Backend:
        if has_images(params, messages) and not backend.capabilities.vision:
            raise UnsupportedFeatureError(
                f"the model {backend.name!r} reads text only; images need a vision model (served "
                "with --visible_vision_models, or a remote one not declared text-only)",
                param="messages" if messages is not None else "images",
            )
        return backend

    def model_defaults(self, params: EvalParams, backend: Backend) -> EvalParams:
        """``params`` with the chosen model's own defaults (model_lock's prompt_type,
        chat_template) where the caller left them to the server."""
        own = {k: v for k, v in self.registry.defaults.get(backend.name, {}).items() if k in params.defaulted}
        return params.model_copy(update=own) if own else params

    def request(self, params: EvalParams, caps: Capabilities | None = None,
                messages: Sequence[Message] | None = None,
                json_schema: JsonSchemaFormat | None = None, strict: bool = False) -> GenerationRequest:
        """The backend request of ``params`` (defaults already filled in) and the client's
        ``messages`` (src/conversation.py composes them) for a backend with ``caps``;
        ``strict``: a max_new_tokens beyond the context is refused (unless --clamp_max_new_tokens)."""
        caps = caps or Capabilities()
        composed = compose(params, messages, caps, self.settings.allow_image_url_fetch)
        funcs = tools.offered(params.tools, params.tool_choice)
        native = caps.native_tools and bool(funcs)
        rendered = tuple({"type": "function", "function": f} for f in funcs) if caps.template_tools else ()
        return GenerationRequest(
            messages=tuple(composed), prompt_type=params.prompt_type or "",
            chat_template=params.chat_template or "", options=sampling_options(params),
            constraint=output_constraint(params, caps.native_tools),
            explicit=explicit_options(params) if caps.passthrough else None,
            tools=tuple(params.tools) if native else rendered,
            tool_choice=params.tool_choice if native else None,
            parallel_tool_calls=params.parallel_tool_calls if native else None,
            json_schema=json_schema if caps.passthrough and params.guided_json is not None else None,
            strict_max_new_tokens=strict and not self.settings.clamp_max_new_tokens,
        )

    def checked_request(self, backend: Backend, params: EvalParams, messages: Sequence[Message] | None = None,
                        json_schema: JsonSchemaFormat | None = None, strict: bool = False) -> GenerationRequest:
        """The request of ``params``, refused (400) when ``backend`` cannot honour its constraint."""
        caps = backend.capabilities
        request = self.request(params, caps, messages, json_schema, strict)
        if tools.offered(params.tools, params.tool_choice) and not caps.tools:
            raise UnsupportedFeatureError(f"the model {backend.name} cannot call tools", param="tools")
        lacking = sorted(name for name, value in params.samplers.items()
                         if name not in caps.samplers and value != EXTRA_SAMPLERS[name])
        if lacking:
            kind = backend.describe().backend
            raise UnsupportedParameterError(
                f"the {kind} backend of the model {backend.name!r} has no {lacking[0]} sampler "
                f"(it takes: {', '.join(sorted(caps.samplers)) or 'none of the extra samplers'})",
                param=lacking[0])
        if request.constraint is not None and not caps.constrained_decoding:
            raise UnsupportedFeatureError(f"the model {backend.name} cannot constrain its output",
                                          param="response_format")
        return request

    def complete_many(
        self, many: list[EvalParams], cancel: threading.Event | None = None
    ) -> Iterator[tuple[str, int, int] | None]:
        """Run generations to their end, all submitted at once so they share the batch.

        Yields None when the first has started, then (text, prompt tokens, completion
        tokens) of each, in order. ``cancel`` (or closing the iterator) stops them all.
        """
        handles = []
        try:
            for params in many:
                filled = params.with_defaults(self.settings)
                backend = self.backend(filled)
                filled = self.model_defaults(filled, backend)
                handles.append(backend.submit(self.request(filled, backend.capabilities), cancel))
            for handle in handles:
                handle.background()  # read one after another below, they all progress meanwhile
            started = False
            for handle in handles:
                text, prompt_tokens, completion_tokens = "", 0, 0
                for event in handle:
                    if not started:
                        started = True
                        yield None
                    text += event.delta
                    prompt_tokens, completion_tokens = event.prompt_tokens, event.completion_tokens
                yield text, prompt_tokens, completion_tokens
        finally:
            for handle in handles:
                handle.cancel()

    def _steps(self, steps: Iterator[Step], sources: list[dict[str, Any]],
               final: bool) -> Generator[EvalChunk, None, None]:
        response, prompt_tokens, completion_tokens = "", 0, 0
        for step in steps:
            response += step.delta
            prompt_tokens += step.prompt_tokens
            completion_tokens += step.completion_tokens
            yield EvalChunk(step.delta, response, [], prompt_tokens, completion_tokens)
        if final:
            yield EvalChunk("", response, sources, prompt_tokens, completion_tokens, "stop")

    def evaluate(
        self,
        params: EvalParams,
        cancel: threading.Event | None = None,
        user: Requester | None = None,
        messages: Sequence[Message] | None = None,
        json_schema: JsonSchemaFormat | None = None,
        strict_max_new_tokens: bool = False,
    ) -> Generator[EvalChunk, None, None]:
        """Answer ``params`` (and the client's ``messages``, when it sent a conversation);
        closing the iterator, or setting ``cancel``, cancels the generation.

        ``user`` is who asks (their personal collections are searched); None is anonymous.
        ``strict_max_new_tokens``: the caller set max_new_tokens itself; more than the context
        window leaves after the prompt is refused (ContextLengthError), not cut to fit.
        The observer, if any, sees the answer's chunks as they pass.
        """
        answer = self._evaluate(params, cancel, user, messages, json_schema, strict_max_new_tokens)
        return answer if self.observer is None else self.observer.observe_answer(answer)

    def _evaluate(
        self, params: EvalParams, cancel: threading.Event | None, user: Requester | None,
        messages: Sequence[Message] | None, json_schema: JsonSchemaFormat | None, strict: bool,
    ) -> Generator[EvalChunk, None, None]:
        params = params.with_defaults(self.settings)
        with self.registry.lease(params.visible_models) as backend:  # a model swap drains it after
            chunks = self._answer(self.checked_backend(backend, params, messages), params, cancel, user,
                                  messages, json_schema, strict)
            with contextlib.closing(chunks):
                for first in chunks:
                    first.model = backend.name  # the first chunk names the model that answers
                    yield first
                    break
                yield from chunks

    def _answer(
        self, backend: Backend, params: EvalParams, cancel: threading.Event | None, user: Requester | None,
        messages: Sequence[Message] | None, json_schema: JsonSchemaFormat | None, strict: bool,
    ) -> Generator[EvalChunk, None, None]:
        sources: list[dict[str, Any]] = []
        params = self.model_defaults(params, backend)
        started = False  # a first (empty) chunk went out already
        answerer = DocumentAnswerer(
            self.docs, lambda many: self.complete_many(many, cancel), backend.count_tokens,
            backend.context_window,
        )
        if answerer.wants(params):
            asked = params.instruction
            plan: DocPlan = answerer.plan(params, user)
            if plan.steps is not None:
                for chunk in self._steps(plan.steps, plan.sources, not plan.reduce):
                    started = True
                    yield chunk
            if plan.params is None:
                return
            params, sources = plan.params, plan.sources
            if messages is not None and params.instruction != asked:  # Summarize/Extract rewrote the question
                messages = with_last_user_text(messages, params.instruction)
        request = self.checked_request(backend, params, messages, json_schema, strict)
        handle = backend.submit(request, cancel)
        try:
            yield from self._generation(handle, request, params, sources, started)
        finally:
            handle.cancel()

    def _generation(self, handle: Handle, request: GenerationRequest, params: EvalParams,
                sources: list[dict[str, Any]], started: bool) -> Generator[EvalChunk, None, None]:
        """The chunks of one generation: text, and tool calls as typed deltas (cut from the
        constrained ``<tool_call>`` text of a backend that does not call tools itself)."""
        constraint = request.constraint
        calls = constraint is not None and constraint.kind == "tool_call"
        several = calls and bool(constraint.value.get("parallel")) if constraint is not None else False
        cutter = ToolCallStream() if calls else None
        response = visible = ""  # the whole answer; its text outside tool calls
        called = False
        pending: list[TokenLogprob] = []  # log probs of tokens not yet yielded
        pending_calls: list[ToolCallDelta] = []
        fenced = params.response_format == "json_code"  # the constrained JSON, in a fence
        for event in until_a_repeated_call(handle) if several else handle:
            final = event.finish_reason is not None
            delta = json_fence(event.delta, not response, final) if fenced else event.delta
            pending.extend(event.logprobs)
            pending_calls.extend(event.tool_calls)
            if cutter is not None:
                text, cut = cut_tool_calls(cutter, delta, final)
                pending_calls.extend(cut)
                response += delta
                visible += text
                delta = text
            else:
                response += delta
            called = called or bool(pending_calls)
            if not (final or params.stream_output) or (started and not (final or delta or pending_calls)):
                continue
            reason: str | None = event.finish_reason
            if final and called and reason == "stop":
                reason = "tool_calls"
            chunk = EvalChunk(delta, response, sources if final else [],
                              event.prompt_tokens, event.completion_tokens, reason,
                              stop_sequence=event.stop_sequence if reason == "stop" else None)
            if final and not params.stream_output:
                chunk.delta = response if cutter is None else visible
            chunk.logprobs, pending = pending, []
            chunk.tool_calls, pending_calls = merged_calls(pending_calls) if final and not params.stream_output \
                else pending_calls, []
            yield chunk


def cut_tool_calls(cutter: ToolCallStream, delta: str, final: bool) -> tuple[str, list[ToolCallDelta]]:
    """The text and the tool-call deltas of a piece of a constrained answer."""
    text, calls = "", []
    for kind, value in cutter.feed(delta, final):
        if kind == "text":
            text += value
            continue
        index, payload = value
        if kind == "call":
            calls.append(ToolCallDelta(index=index, id=payload.id, name=payload.name))
        else:
            calls.append(ToolCallDelta(index=index, arguments=payload))
    return text, calls


def merged_calls(deltas: list[ToolCallDelta]) -> list[ToolCallDelta]:
    """Whole calls, one delta each, of an answer that is not streamed."""
    whole: dict[int, ToolCallDelta] = {}
    for d in deltas:
        seen = whole.get(d.index)
        whole[d.index] = d if seen is None else msgspec.structs.replace(
            seen, id=seen.id or d.id, name=seen.name or d.name, arguments=seen.arguments + d.arguments)
    return [whole[i] for i in sorted(whole)]


def until_a_repeated_call(events: Iterable[TokenEvent]) -> Iterator[TokenEvent]:
    """The events of an answer that may hold several tool calls, ended ("stop") as soon as a
    call repeats an earlier one exactly: a small model given the choice loops on one call.
    The repeat is left out of the answer's calls (src/tools.py drops it)."""
    text = ""
    for event in events:
        text += event.delta
        if event.finish_reason is None and tools.repeats_a_call(text):
            yield dataclasses.replace(event, finish_reason="stop")
            return
        yield event


def json_fence(delta: str, first: bool, final: bool) -> str:
    """A piece of a json_code answer: the opening fence before its first text, the closing
    one after its last, so the streamed pieces add up to the whole fenced answer."""
    if first and (delta or final):
        delta = JSON_FENCE[0] + delta
    return delta + JSON_FENCE[1] if final else delta
