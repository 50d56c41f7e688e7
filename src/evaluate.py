"""evaluate(): the single entry for the UI, the OpenAI workers and the CLI.

``Evaluator(settings, registry).evaluate(params)`` turns :class:`EvalParams` into a
stream of :class:`EvalChunk`: the prompt is built from the system prompt, the earlier
turns, any documents and the user's message, and the engine's token events are passed
on as text deltas with the accumulated answer, token counts and, on the last chunk,
the finish reason. The model is the registry's backend that ``params.visible_models``
names (the first served one by default). When the model's answer streams, the first chunk has an empty delta
and comes as soon as the engine starts the answer (after any wait in its queue, before
the prompt is read), so a server can start its response without waiting for the first
token.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from src import tools
from src.docqa.answer import DocPlan, DocumentAnswerer, Step
from src.engine.backend import Backend
from src.engine.image_inputs import image_bytes, image_part
from src.engine.prompting import Message
from src.engine.registry import ModelRegistry
from src.engine.types import (
    Capabilities,
    GenerationRequest,
    OutputConstraint,
    SamplingOptions,
    TokenEvent,
    TokenLogprob,
)
from src.errors import UnsupportedFeatureError
from src.params import EvalParams
from src.settings import Settings

if TYPE_CHECKING:
    from src.docqa.collections import Requester
    from src.docqa.service import DocumentService
    from src.metrics import AnswerObserver

log = logging.getLogger(__name__)

NO_DOCUMENT_MODES = ("LLM", "Disabled")
DOCUMENTS_PREAMBLE = (
    "Pay attention and remember the information below, which will help to answer the "
    "question or imperative after the context ends.\n"
)
DOCUMENTS_QUESTION = "According to only the information in the documents above, "
JSON_INSTRUCTION = "Respond only with one valid JSON object, no other text."
JSON_FENCE = ("```json\n", "\n```")  # around a json_code answer


@dataclass
class EvalChunk:
    """One step of an answer. ``finish_reason`` is set on the last chunk only."""

    delta: str
    response: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    logprobs: list[dict[str, Any]] = field(default_factory=list)


def build_messages(params: EvalParams, caps: Capabilities | None = None) -> list[Message]:
    """System prompt, earlier turns, then the user turn with any documents as context.

    For a backend that takes tools natively or renders them itself, or forwards requests to
    an engine of its own (``caps``), no tool or JSON instructions are added and tool turns
    stay as they are.
    """
    caps = caps or Capabilities()
    messages: list[Message] = []
    system = params.system_prompt or ""
    funcs = tools.offered(params.tools, params.tool_choice)
    own_tools = caps.native_tools or caps.template_tools
    if funcs and not own_tools:
        system = f"{system}\n{tools.tools_instruction(funcs)}".strip()
    elif not funcs and not caps.passthrough and (params.response_format != "text" or params.guided_json is not None):
        system = f"{system}\n{json_instruction(params.guided_json)}".strip()
    if system:
        messages.append({"role": "system", "content": system})
    messages.extend(conversation_messages(params.chat_conversation, own_tools))
    user = params.user_message()
    if params.text_context_list:
        documents = "\n\n".join(params.text_context_list)
        user = f"{DOCUMENTS_PREAMBLE}\"\"\"\n{documents}\n\"\"\"\n{DOCUMENTS_QUESTION}{user}"
    if user or not messages:  # no user turn: answer the system prompt, or continue the assistant's
        messages.append({"role": "user", "content": user})
    return messages


def json_instruction(schema: dict[str, Any] | str | None) -> str:
    """The prompt's JSON instruction (a hint for the model; the grammar enforces the format)."""
    if schema is None:
        return JSON_INSTRUCTION
    text = schema if isinstance(schema, str) else json.dumps(schema)
    return f"{JSON_INSTRUCTION} It must match this JSON schema: {text}"


def conversation_messages(conversation: list[Any], native_tools: bool = False) -> list[Message]:
    """h2oGPT's [human, bot] pairs, or {role, content} dicts, as chat messages; tool calls
    and results in the fallback text format unless the backend takes them as they are."""
    messages: list[Message] = []
    for turn in conversation:
        if isinstance(turn, dict):
            messages.append(tools.native_history_message(turn) if native_tools
                            else tools.render_history_message(turn))
            continue
        human, bot = turn
        if human:
            messages.append({"role": "user", "content": str(human)})
        if bot:
            messages.append({"role": "assistant", "content": str(bot)})
    return messages


def sampling_options(params: EvalParams) -> SamplingOptions:
    """The engine's options for a request whose defaults are already filled in."""
    assert params.max_new_tokens is not None and params.temperature is not None
    return SamplingOptions(
        max_new_tokens=params.max_new_tokens,
        min_new_tokens=params.min_new_tokens or 0,
        temperature=params.temperature,
        top_p=params.top_p if params.top_p is not None else 1.0,
        top_k=params.top_k or 0,
        repetition_penalty=params.repetition_penalty or 1.0,
        presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty,
        seed=params.seed or 0,
        logit_bias=tuple(sorted(params.logit_bias.items())),
        logprobs=params.top_logprobs if params.logprobs else None,
        do_sample=params.do_sample,
        stop=tuple(params.stop),
        max_time=params.max_time,
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


def logprob_dict(logprob: TokenLogprob) -> dict[str, Any]:
    """A token's log prob as plain data: {token, logprob, top: [[token, logprob], ...]}."""
    return {
        "token": logprob.token,
        "logprob": logprob.logprob,
        "top": [[token, value] for token, value in logprob.top],
    }


class Evaluator:
    """Binds evaluate() to the settings (defaults), the model registry and the documents."""

    def __init__(self, settings: Settings, registry: ModelRegistry, docs: DocumentService | None = None,
                 observer: AnswerObserver | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.docs = docs
        self.observer = observer  # sees every answer (src/metrics.py)

    def backend(self, params: EvalParams) -> Backend:
        """The model ``params`` asks for (``visible_models``); raises UnknownModelError, and
        UnsupportedFeatureError for images given to a model that reads text only."""
        backend = self.registry.get(params.visible_models)
        if params.images and not backend.capabilities.vision:
            raise UnsupportedFeatureError(
                f"the model {backend.name!r} reads text only; images need a vision model served "
                "with --visible_vision_models (its folder name is the model to ask for)",
                param="images",
            )
        return backend

    def model_defaults(self, params: EvalParams, backend: Backend) -> EvalParams:
        """``params`` with the chosen model's own defaults (model_lock's prompt_type,
        chat_template) where the caller left them to the server."""
        own = {k: v for k, v in self.registry.defaults.get(backend.name, {}).items() if k in params.defaulted}
        return params.model_copy(update=own) if own else params

    def request(self, params: EvalParams, caps: Capabilities | None = None) -> GenerationRequest:
        """The backend request of ``params`` (defaults already filled in) for a backend with
        ``caps``; its images go into the last user message as image content parts, before the text."""
        caps = caps or Capabilities()
        messages: list[dict[str, Any]] = [dict(m) for m in build_messages(params, caps)]
        if params.images:
            allow = self.settings.allow_image_url_fetch
            parts = [image_part(image_bytes(ref, allow)) for ref in params.images]
            user = next((m for m in reversed(messages) if m["role"] == "user"), None)
            if user is None:
                user = {"role": "user", "content": ""}
                messages.append(user)
            user["content"] = [*parts, {"type": "text", "text": user["content"]}]
        funcs = tools.offered(params.tools, params.tool_choice)
        native = caps.native_tools and bool(funcs)
        rendered = tuple({"type": "function", "function": f} for f in funcs) if caps.template_tools else ()
        return GenerationRequest(
            messages=tuple(messages), prompt_type=params.prompt_type or "",
            chat_template=params.chat_template or "", options=sampling_options(params),
            constraint=output_constraint(params, caps.native_tools),
            explicit=explicit_options(params) if caps.passthrough else None,
            tools=tuple(params.tools) if native else rendered,
            tool_choice=params.tool_choice if native else None,
            parallel_tool_calls=params.parallel_tool_calls if native else None,
        )

    def checked_request(self, backend: Backend, params: EvalParams) -> GenerationRequest:
        """The request of ``params``, refused (400) when ``backend`` cannot honour its constraint."""
        caps = backend.capabilities
        request = self.request(params, caps)
        if tools.offered(params.tools, params.tool_choice) and not caps.tools:
            raise UnsupportedFeatureError(f"the model {backend.name} cannot call tools", param="tools")
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
    ) -> Generator[EvalChunk, None, None]:
        """Answer ``params``; closing the iterator, or setting ``cancel``, cancels the generation.

        ``user`` is who asks (their personal collections are searched); None is anonymous.
        The observer, if any, sees the answer's chunks as they pass.
        """
        answer = self._answer(params, cancel, user)
        return answer if self.observer is None else self.observer.observe_answer(answer)

    def _answer(
        self, params: EvalParams, cancel: threading.Event | None, user: Requester | None,
    ) -> Generator[EvalChunk, None, None]:
        sources: list[dict[str, Any]] = []
        params = params.with_defaults(self.settings)
        backend = self.backend(params)
        params = self.model_defaults(params, backend)
        started = False  # a first (empty) chunk went out already
        answerer = DocumentAnswerer(
            self.docs, lambda many: self.complete_many(many, cancel), backend.count_tokens,
            backend.context_window,
        )
        if answerer.wants(params):
            plan: DocPlan = answerer.plan(params, user)
            if plan.steps is not None:
                for chunk in self._steps(plan.steps, plan.sources, not plan.reduce):
                    started = True
                    yield chunk
            if plan.params is None:
                return
            params, sources = plan.params, plan.sources
        request = self.checked_request(backend, params)
        handle = backend.submit(request, cancel)
        constraint = request.constraint
        several = constraint is not None and constraint.kind == "tool_call" and bool(constraint.value.get("parallel"))
        response = ""
        pending: list[dict[str, Any]] = []  # log probs of tokens not yet yielded
        fenced = params.response_format == "json_code"  # the constrained JSON, in a fence
        try:
            for event in until_a_repeated_call(handle) if several else handle:
                final = event.finish_reason is not None
                delta = json_fence(event.delta, not response, final) if fenced else event.delta
                response += delta
                pending.extend(logprob_dict(lp) for lp in event.logprobs)
                if not (final or params.stream_output) or (started and not (final or delta)):
                    continue
                chunk = EvalChunk(
                    delta, response, sources if final else [],
                    event.prompt_tokens, event.completion_tokens, event.finish_reason,
                )
                if final and not params.stream_output:
                    chunk.delta = response
                chunk.logprobs, pending = pending, []
                yield chunk
        finally:
            handle.cancel()


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
