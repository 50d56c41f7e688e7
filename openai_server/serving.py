"""Serving: run translated requests on the engine and shape OpenAI responses.

Routers hand a validated request to :class:`CompletionService`; it translates it
(openai_server.translate), streams each choice from the engine over IPC (the engine's
``evaluate`` stream method), and builds a ``chat.completion`` / ``text_completion``
response or a stream of chunks. Choices of one request run concurrently, so their
chunks interleave by ``index`` as OpenAI's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from openai_server import translate
from openai_server.errors import InvalidRequestError, NotFoundError, ServiceUnavailableError
from openai_server.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionFields,
    ChoiceLogprobs,
    Completion,
    CompletionChoice,
    CompletionFields,
    CompletionLogprobs,
    Delta,
    FunctionCall,
    Model,
    TokenLogprob,
    ToolCall,
    TopLogprob,
    Usage,
    new_id,
    now,
)
from openai_server.protocol import ToolCallDelta as ToolCallDeltaWire
from openai_server.saved_chats import SavedChats
from src.contract import Engine, EvalEvent, EvaluateRequest, Requester, ToolCallDelta
from src.contract import TokenLogprob as ContractLogprob

log = logging.getLogger(__name__)

def _on_model(choices: list[EvaluateRequest], model: str | None) -> list[EvaluateRequest]:
    """The OpenAI ``model`` is h2oGPT's ``visible_models``, unless extra_body set that itself.
    A request that names no model (``None``) goes to the engine's default: during a model swap
    that is the new model, which the worker's list may not show yet."""
    if model is None:
        return choices
    return [c if "visible_models" in c.params.model_fields_set else msgspec.structs.replace(
        c, params=c.params.model_copy(update={"visible_models": model})) for c in choices]


async def _merged(client: Engine, choices: list[EvaluateRequest]) -> AsyncGenerator[tuple[int, EvalEvent], None]:
    """(choice index, event) from all choices as they come; cancels the rest when left."""
    if len(choices) == 1:  # the common case: no fan-in, one hop less per token
        async with contextlib.aclosing(client.evaluate(choices[0])) as stream:
            async for first in stream:
                yield 0, first
        return
    queue: asyncio.Queue[tuple[int, EvalEvent | None, BaseException | None]] = asyncio.Queue()

    async def pump(index: int, request: EvaluateRequest) -> None:
        try:
            async for event in client.evaluate(request):
                await queue.put((index, event, None))
            await queue.put((index, None, None))
        except Exception as exc:
            await queue.put((index, None, exc))

    tasks = [asyncio.create_task(pump(i, p)) for i, p in enumerate(choices)]
    try:
        remaining = len(tasks)
        while remaining:
            index, event, error = await queue.get()
            if error is not None:
                raise error
            if event is None:
                remaining -= 1
                continue
            yield index, event
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _primed(stream: AsyncGenerator[tuple[int, EvalEvent], None]
                  ) -> tuple[str | None, AsyncGenerator[tuple[int, EvalEvent], None]]:
    """Wait for the first item before the response starts, so early errors get a status;
    returns the model that answers (the engine names it in that first event) and the stream.

    Primed on the engine's stream, whose first item comes as the engine starts the answer
    (src.evaluate): the status line, the headers and a chat stream's role chunk go out
    while the prompt is read, so the client has set up its stream before the first token.
    Refusals (bad parameters, a prompt over the context window, a queue timeout) all come
    before that item.
    """
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        first = None

    async def rest() -> AsyncGenerator[tuple[int, EvalEvent], None]:
        try:
            if first is None:
                return
            yield first
            async for item in stream:
                yield item
        finally:
            await stream.aclose()

    return (first[1].model if first is not None else None), rest()


class ChatStream:
    """A streamed chat answer: its chunks, and the model that answers them (named by the
    engine's first event: no model list is asked for first)."""

    def __init__(self, model: str, chunks: AsyncGenerator[ChatCompletionChunk, None]) -> None:
        self.model = model
        self.chunks = chunks

    def __aiter__(self) -> ChatStream:
        return self

    def __anext__(self) -> Awaitable[ChatCompletionChunk]:
        return self.chunks.__anext__()

    async def aclose(self) -> None:
        await self.chunks.aclose()


@dataclass
class Answer:
    """A choice collected to its end: text, log probs, whole tool calls, the final event."""

    text: str = ""
    logprobs: list[ContractLogprob] = field(default_factory=list)
    calls: dict[int, ToolCall] = field(default_factory=dict)
    final: EvalEvent | None = None

    def add(self, event: EvalEvent) -> None:
        self.text += event.delta
        self.logprobs.extend(event.logprobs)
        for d in event.tool_calls:
            call = self.calls.get(d.index)
            if call is None:
                self.calls[d.index] = ToolCall(id=d.id or "", function=FunctionCall(name=d.name or "",
                                                                                    arguments=d.arguments))
            else:
                call.function.arguments = (call.function.arguments or "") + d.arguments
        if event.finish_reason is not None:
            self.final = event


def _chat_logprobs(entries: list[ContractLogprob]) -> ChoiceLogprobs | None:
    if not entries:
        return None
    return ChoiceLogprobs(content=[
        TokenLogprob(
            token=e.token, logprob=e.logprob, bytes=list(e.token.encode()),
            top_logprobs=[TopLogprob(token=t, logprob=v, bytes=list(t.encode())) for t, v in e.top],
        )
        for e in entries
    ])


def _completion_logprobs(entries: list[ContractLogprob], offset: int = 0) -> CompletionLogprobs | None:
    if not entries:
        return None
    out = CompletionLogprobs()
    for e in entries:
        out.text_offset.append(offset)
        out.tokens.append(e.token)
        out.token_logprobs.append(e.logprob)
        out.top_logprobs.append(dict(e.top))
        offset += len(e.token)
    return out


def _sources(event: EvalEvent) -> list[dict[str, Any]] | None:
    return [msgspec.to_builtins(s) for s in event.sources] or None


def _usage(finals: dict[int, EvalEvent], prompts: int = 1, per_prompt: int = 1) -> Usage:
    prompt = sum(finals[i * per_prompt].prompt_tokens for i in range(prompts) if i * per_prompt in finals)
    completion = sum(c.completion_tokens for c in finals.values())
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _chat_choice(index: int, answer: Answer) -> ChatChoice:
    """A finished choice: text, or (when the answer called tools) ``tool_calls`` and no content."""
    assert answer.final is not None
    reason = translate.finish_reason(answer.final.finish_reason)
    message = AssistantMessage(content=answer.text)
    if answer.calls:
        message = AssistantMessage(content=answer.text or None,
                                   tool_calls=[answer.calls[i] for i in sorted(answer.calls)])
    return ChatChoice(index=index, message=message, logprobs=_chat_logprobs(answer.logprobs), finish_reason=reason,
                      sources=_sources(answer.final), stop_sequence=answer.final.stop_sequence)


def _tool_delta(d: ToolCallDelta) -> Delta:
    """OpenAI's delta of a tool-call piece: a call's first carries its index, id, type and name."""
    if d.id is not None or d.name is not None:
        return Delta(tool_calls=[ToolCallDeltaWire(index=d.index, id=d.id, type="function",
                                                   function=FunctionCall(name=d.name or "", arguments=d.arguments))])
    return Delta(tool_calls=[ToolCallDeltaWire(index=d.index, function=FunctionCall(arguments=d.arguments))])


class CompletionService:
    """Chat and text completions over the engine."""

    def __init__(self, client: Engine, max_messages: int = 2048, version: str = "",
                 saved_chats: SavedChats | None = None) -> None:
        self.client = client
        self.saved_chats = saved_chats  # extra_body chat_id (None: --save_chats is off)
        self.version = version
        self.max_messages = max_messages  # --openai_max_messages

    async def models(self) -> list[Model]:
        """The served models, asked of the engine each time: an admin may swap the model
        (/v1/internal/model/load) through any worker."""
        return [Model(id=m.id, created=m.created, owned_by=m.owned_by, max_model_len=m.context_window)
                for m in await self.client.models(timeout=10)]

    def fingerprint(self, model: str) -> str:
        """``system_fingerprint``: changes when the server's version or the model does."""
        return "fp_" + hashlib.sha256(f"{self.version}\0{model}".encode()).hexdigest()[:12]

    async def model_id(self, requested: str | None) -> str:
        """The id to answer with; an unknown model is a 404."""
        models = await self.models()
        if not models:
            raise ServiceUnavailableError("no model is loaded: POST /v1/internal/model/load loads one",
                                          code="model_not_loaded")
        if not requested:
            return models[0].id
        for model in models:
            if model.id == requested:
                return model.id
        raise NotFoundError(f"the model {requested!r} does not exist", param="model",
                            code="model_not_found")

    # --- chat ------------------------------------------------------------------------------
    async def chat(self, request: ChatCompletionFields, requester: Requester | None = None
                   ) -> ChatCompletion | ChatStream:
        """``requester``: whose personal collections (MyData) a document query searches.
        The engine checks the model (an unknown one is a 404) and names the one that answers
        in the answer's first event."""
        if len(request.messages) > self.max_messages:
            raise InvalidRequestError(
                f"{len(request.messages)} messages is more than this server takes "
                f"({self.max_messages}, --openai_max_messages)", param="messages",
                code="too_many_messages")
        choices = _on_model(translate.chat_requests(request, requester), request.model or None)
        if request.chat_id:
            choices = await self._continued(choices, requester, request.chat_id)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            named, items = await _primed(_merged(self.client, choices))
            model = named or await self.model_id(request.model)
            if request.chat_id:
                items = self._saving(items, choices[0], requester, request, model)
            return ChatStream(model, self._chat_stream(items, model, include_usage))
        named, answers = await self._collect(choices)
        model = named or await self.model_id(request.model)
        if request.chat_id and 0 in answers and answers[0].final is not None:
            await self._save(choices[0], requester, request, model, answers[0].text, answers[0].final)
        return ChatCompletion(
            id=new_id("chatcmpl"), created=now(), model=model, usage=_usage(_finals(answers)),
            system_fingerprint=self.fingerprint(model),
            choices=[_chat_choice(i, a) for i, a in sorted(answers.items())],
        )

    # --- saved chats (extra_body chat_id) ----------------------------------------------
    def _chats(self) -> SavedChats:
        if self.saved_chats is None:
            raise InvalidRequestError("saved chats are off on this server (--save_chats)", param="chat_id",
                                      code="feature_off_save_chats")
        return self.saved_chats

    async def _continued(self, choices: list[EvaluateRequest], requester: Requester | None,
                         chat_id: str) -> list[EvaluateRequest]:
        """The choices with the saved chat's exchanges as their earlier turns (unless the
        caller gave a chat_conversation of their own)."""
        history = await self._chats().history(requester, chat_id)
        return [c if "chat_conversation" in c.params.model_fields_set else msgspec.structs.replace(
            c, params=c.params.model_copy(update={"chat_conversation": [list(p) for p in history]}))
            for c in choices]

    async def _save(self, choice: EvaluateRequest, requester: Requester | None, request: ChatCompletionFields,
                    model: str, text: str, final: EvalEvent) -> None:
        settings = choice.params.model_dump(exclude={"chat_conversation", "instruction"}, exclude_unset=True,
                                            mode="json")
        await self._chats().append(requester, str(request.chat_id), choice.params.instruction, text,
                                   [msgspec.to_builtins(s) for s in final.sources], model, settings)

    async def _saving(self, items: AsyncGenerator[tuple[int, EvalEvent], None], choice: EvaluateRequest,
                      requester: Requester | None, request: ChatCompletionFields, model: str
                      ) -> AsyncGenerator[tuple[int, EvalEvent], None]:
        """The stream as it is, with choice 0's exchange saved once it is complete."""
        text = ""
        async with contextlib.aclosing(items):
            async for index, event in items:
                if index == 0:
                    text += event.delta
                    if event.finish_reason is not None:
                        await self._save(choice, requester, request, model, text, event)
                yield index, event

    async def _chat_stream(self, items: AsyncGenerator[tuple[int, EvalEvent], None], model: str,
                           include_usage: bool) -> AsyncGenerator[ChatCompletionChunk, None]:
        rid, created, fp = new_id("chatcmpl"), now(), self.fingerprint(model)
        usage_field: dict[str, Any] = {"usage": None} if include_usage else {}

        def chunk(choice: ChatChunkChoice) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=rid, created=created, model=model, choices=[choice],
                                       system_fingerprint=fp, **usage_field)

        started: set[int] = set()
        finals: dict[int, EvalEvent] = {}
        async with contextlib.aclosing(items):  # leaving early cancels the engine's work
            async for index, event in items:
                if index not in started:
                    started.add(index)
                    yield chunk(ChatChunkChoice(index=index, delta=Delta(role="assistant", content="")))
                if event.delta or event.logprobs:
                    yield chunk(ChatChunkChoice(index=index, delta=Delta(content=event.delta),
                                                logprobs=_chat_logprobs(event.logprobs)))
                for call in event.tool_calls:
                    yield chunk(ChatChunkChoice(index=index, delta=_tool_delta(call)))
                if event.finish_reason is not None:
                    finals[index] = event
                    yield chunk(ChatChunkChoice(index=index, delta=Delta(),
                                                finish_reason=translate.finish_reason(event.finish_reason),
                                                sources=_sources(event), stop_sequence=event.stop_sequence))
        if include_usage:
            yield ChatCompletionChunk(id=rid, created=created, model=model, choices=[], usage=_usage(finals),
                                      system_fingerprint=fp)

    # --- text completions ------------------------------------------------------------------
    async def completion(self, request: CompletionFields,
                         requester: Requester | None = None) -> Completion | AsyncIterator[Any]:
        prompts = translate.completion_prompts(request)
        strict = translate.asked_max_tokens(request)
        choices = _on_model([EvaluateRequest(params=p, requester=requester, strict_max_new_tokens=strict)
                             for p in translate.completion_params(request)], request.model or None)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            named, items = await _primed(_merged(self.client, choices))
            model = named or await self.model_id(request.model)
            return self._completion_stream(request, prompts, items, model, include_usage)
        named, answers = await self._collect(choices)
        model = named or await self.model_id(request.model)
        out = []
        for i, a in sorted(answers.items()):
            assert a.final is not None
            prefix = prompts[i // request.n] if request.echo else ""
            out.append(CompletionChoice(
                index=i, text=prefix + a.text, logprobs=_completion_logprobs(a.logprobs, len(prefix)),
                finish_reason=translate.finish_reason(a.final.finish_reason), sources=_sources(a.final),
            ))
        return Completion(id=new_id("cmpl"), created=now(), model=model, choices=out,
                          system_fingerprint=self.fingerprint(model),
                          usage=_usage(_finals(answers), len(prompts), request.n))

    async def _completion_stream(self, request: CompletionFields, prompts: list[str],
                                 items: AsyncGenerator[tuple[int, EvalEvent], None], model: str,
                                 include_usage: bool) -> AsyncIterator[Completion]:
        rid, created, fp = new_id("cmpl"), now(), self.fingerprint(model)
        usage_field: dict[str, Any] = {"usage": None} if include_usage else {}
        finals: dict[int, EvalEvent] = {}
        started: set[int] = set()
        async with contextlib.aclosing(items):  # leaving early cancels the engine's work
            async for index, event in items:
                text = event.delta
                if request.echo and index not in started:
                    text = prompts[index // request.n] + text
                started.add(index)
                reason = event.finish_reason
                if reason is not None:
                    finals[index] = event
                if text or reason is not None or event.logprobs:
                    yield Completion(id=rid, created=created, model=model, system_fingerprint=fp, **usage_field, choices=[
                        CompletionChoice(
                            index=index, text=text, logprobs=_completion_logprobs(event.logprobs),
                            finish_reason=translate.finish_reason(reason) if reason is not None else None,
                            sources=_sources(event),
                        )
                    ])
        if include_usage:
            yield Completion(id=rid, created=created, model=model, choices=[], system_fingerprint=fp,
                             usage=_usage(finals, len(prompts), request.n))

    async def _collect(self, choices: list[EvaluateRequest]) -> tuple[str | None, dict[int, Answer]]:
        """Run every choice to its final event (stream_output is off: one event each); returns
        the model that answered (the engine names it in each answer's first event) too."""
        answers: dict[int, Answer] = {}
        model: str | None = None
        async for index, event in _merged(self.client, choices):
            model = model or event.model
            answers.setdefault(index, Answer()).add(event)
        return model, answers


def _finals(answers: dict[int, Answer]) -> dict[int, EvalEvent]:
    return {i: a.final for i, a in answers.items() if a.final is not None}
