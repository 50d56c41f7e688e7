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
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol

from openai_server import translate
from openai_server.errors import InvalidRequestError, NotFoundError
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
    ToolCallDelta,
    TopLogprob,
    Usage,
    new_id,
    now,
)
from src.params import EvalParams
from src.tools import ToolCallStream, parse_tool_calls

log = logging.getLogger(__name__)

Chunk = dict[str, Any]  # an EvalChunk as plain data (src.evaluate.EvalChunk fields)


class EngineClient(Protocol):
    """What the API needs of the engine (src.ipc.client.EngineClient, or a test fake)."""

    async def call(self, method: str, args: dict[str, Any] | None = None,
                   timeout: float | None = None) -> Any: ...

    def stream(self, method: str, args: dict[str, Any] | None = None) -> AsyncGenerator[Any, None]:
        ...


Requester = dict[str, Any] | None  # who asks ({name, scratch}: openai_server.identity.Identity)


def _args(params: EvalParams, requester: Requester = None) -> dict[str, Any]:
    args = params.model_dump(exclude_unset=True)
    if requester:
        args["requester"] = requester
    return args


def _on_model(choices: list[EvalParams], model: str) -> list[EvalParams]:
    """The OpenAI ``model`` is h2oGPT's ``visible_models``, unless extra_body set that itself."""
    return [c if "visible_models" in c.model_fields_set else c.model_copy(update={"visible_models": model})
            for c in choices]


async def _merged(client: EngineClient, choices: list[EvalParams],
                  requester: Requester = None) -> AsyncGenerator[tuple[int, Chunk], None]:
    """(choice index, chunk) from all choices as they come; cancels the rest when left."""
    if len(choices) == 1:  # the common case: no fan-in, one hop less per token
        async with contextlib.aclosing(client.stream("evaluate", _args(choices[0], requester))) as stream:
            async for chunk in stream:
                yield 0, chunk
        return
    queue: asyncio.Queue[tuple[int, Chunk | None, BaseException | None]] = asyncio.Queue()

    async def pump(index: int, params: EvalParams) -> None:
        try:
            async for chunk in client.stream("evaluate", _args(params, requester)):
                await queue.put((index, chunk, None))
            await queue.put((index, None, None))
        except Exception as exc:
            await queue.put((index, None, exc))

    tasks = [asyncio.create_task(pump(i, p)) for i, p in enumerate(choices)]
    try:
        remaining = len(tasks)
        while remaining:
            index, chunk, error = await queue.get()
            if error is not None:
                raise error
            if chunk is None:
                remaining -= 1
                continue
            yield index, chunk
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _primed(stream: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """Wait for the first item before the response starts, so early errors get a status.

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

    async def rest() -> AsyncGenerator[Any, None]:
        try:
            if first is None:
                return
            yield first
            async for item in stream:
                yield item
        finally:
            await stream.aclose()

    return rest()


def _chat_logprobs(chunk: Chunk) -> ChoiceLogprobs | None:
    entries = chunk.get("logprobs") or []
    if not entries:
        return None
    return ChoiceLogprobs(content=[
        TokenLogprob(
            token=e["token"], logprob=e["logprob"], bytes=list(e["token"].encode()),
            top_logprobs=[TopLogprob(token=t, logprob=v, bytes=list(t.encode())) for t, v in e["top"]],
        )
        for e in entries
    ])


def _completion_logprobs(chunks: list[Chunk], offset: int = 0) -> CompletionLogprobs | None:
    entries = [e for c in chunks for e in c.get("logprobs") or []]
    if not entries:
        return None
    out = CompletionLogprobs()
    for e in entries:
        out.text_offset.append(offset)
        out.tokens.append(e["token"])
        out.token_logprobs.append(e["logprob"])
        out.top_logprobs.append({t: v for t, v in e["top"]})
        offset += len(e["token"])
    return out


def _usage(finals: dict[int, Chunk], prompts: int = 1, per_prompt: int = 1) -> Usage:
    prompt = sum(finals[i * per_prompt].get("prompt_tokens", 0) for i in range(prompts) if i * per_prompt in finals)
    completion = sum(c.get("completion_tokens", 0) for c in finals.values())
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _offers_tools(params: EvalParams) -> bool:
    return bool(params.tools) and params.tool_choice != "none"


def _chat_choice(index: int, chunk: Chunk, with_tools: bool) -> ChatChoice:
    """A finished choice: text, or (when the answer is a call) ``tool_calls`` and no content."""
    reason = translate.finish_reason(chunk["finish_reason"])
    calls = parse_tool_calls(chunk["response"]) if with_tools and reason == "stop" else []
    message = AssistantMessage(content=chunk["response"])
    if calls:
        message = AssistantMessage(content=None, tool_calls=[
            ToolCall(id=c.id, function=FunctionCall(name=c.name, arguments=c.arguments)) for c in calls])
        reason = "tool_calls"
    return ChatChoice(index=index, message=message, logprobs=_chat_logprobs(chunk), finish_reason=reason,
                      sources=chunk.get("sources") or None)


def _tool_deltas(stream: ToolCallStream, text: str, final: bool) -> list[Delta]:
    """OpenAI's deltas for a piece of an answer that may hold tool calls: each call's first
    delta has its index, id, type and name; later ones carry its argument fragments."""
    out = []
    for kind, value in stream.feed(text, final):
        if kind == "text":
            out.append(Delta(content=value))
            continue
        index, payload = value
        if kind == "call":
            out.append(Delta(tool_calls=[ToolCallDelta(index=index, id=payload.id, type="function",
                                                       function=FunctionCall(name=payload.name, arguments=""))]))
        else:
            out.append(Delta(tool_calls=[ToolCallDelta(index=index, function=FunctionCall(arguments=payload))]))
    return out


class CompletionService:
    """Chat and text completions over an engine client."""

    def __init__(self, client: EngineClient, max_messages: int = 2048, version: str = "") -> None:
        self.client = client
        self.version = version
        self.max_messages = max_messages  # --openai_max_messages
        self._models: list[Model] | None = None

    async def models(self) -> list[Model]:
        """The served models (asked of the engine once, then remembered)."""
        if self._models is None:
            raw = await self.client.call("models", timeout=10)
            self._models = [Model(**m) for m in raw]
        return self._models

    def fingerprint(self, model: str) -> str:
        """``system_fingerprint``: changes when the server's version or the model does."""
        return "fp_" + hashlib.sha256(f"{self.version}\0{model}".encode()).hexdigest()[:12]

    async def model_id(self, requested: str | None) -> str:
        """The id to answer with; an unknown model is a 404."""
        models = await self.models()
        if not requested:
            return models[0].id
        for model in models:
            if model.id == requested:
                return model.id
        raise NotFoundError(f"the model {requested!r} does not exist", param="model",
                            code="model_not_found")

    # --- chat ------------------------------------------------------------------------------
    async def chat(self, request: ChatCompletionFields,
                   requester: Requester = None) -> ChatCompletion | AsyncIterator[Any]:
        """``requester``: whose personal collections (MyData) a document query searches."""
        if len(request.messages) > self.max_messages:
            raise InvalidRequestError(
                f"{len(request.messages)} messages is more than this server takes "
                f"({self.max_messages}, --openai_max_messages)", param="messages",
                code="too_many_messages")
        model = await self.model_id(request.model)
        choices = _on_model(translate.chat_params(request), model)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            items = await _primed(_merged(self.client, choices, requester))
            return self._chat_stream(items, model, include_usage, _offers_tools(choices[0]))
        finals = await self._collect(choices, requester)
        with_tools = _offers_tools(choices[0])
        return ChatCompletion(
            id=new_id("chatcmpl"), created=now(), model=model, usage=_usage(finals),
            system_fingerprint=self.fingerprint(model),
            choices=[_chat_choice(i, c, with_tools) for i, c in sorted(finals.items())],
        )

    async def _chat_stream(self, items: AsyncGenerator[tuple[int, Chunk], None], model: str,
                           include_usage: bool, with_tools: bool = False) -> AsyncIterator[ChatCompletionChunk]:
        rid, created, fp = new_id("chatcmpl"), now(), self.fingerprint(model)
        usage_field: dict[str, Any] = {"usage": None} if include_usage else {}

        def chunk(choice: ChatChunkChoice) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=rid, created=created, model=model, choices=[choice],
                                       system_fingerprint=fp, **usage_field)

        started: set[int] = set()
        finals: dict[int, Chunk] = {}
        calls: dict[int, ToolCallStream] = {}
        async with contextlib.aclosing(items):  # leaving early cancels the engine's work
            async for index, item in items:
                if index not in started:
                    started.add(index)
                    yield chunk(ChatChunkChoice(index=index, delta=Delta(role="assistant", content="")))
                final = item["finish_reason"] is not None
                if with_tools:
                    stream = calls.setdefault(index, ToolCallStream())
                    for delta in _tool_deltas(stream, item["delta"], final):
                        yield chunk(ChatChunkChoice(index=index, delta=delta))
                elif item["delta"] or item.get("logprobs"):
                    yield chunk(ChatChunkChoice(index=index, delta=Delta(content=item["delta"]),
                                                logprobs=_chat_logprobs(item)))
                if final:
                    finals[index] = item
                    reason = translate.finish_reason(item["finish_reason"])
                    if index in calls and calls[index].calls and reason == "stop":
                        reason = "tool_calls"
                    yield chunk(ChatChunkChoice(index=index, delta=Delta(), finish_reason=reason,
                                                sources=item.get("sources") or None))
        if include_usage:
            yield ChatCompletionChunk(id=rid, created=created, model=model, choices=[], usage=_usage(finals),
                                      system_fingerprint=fp)

    # --- text completions ------------------------------------------------------------------
    async def completion(self, request: CompletionFields,
                         requester: Requester = None) -> Completion | AsyncIterator[Any]:
        model = await self.model_id(request.model)
        prompts = translate.completion_prompts(request)
        choices = _on_model(translate.completion_params(request), model)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            items = await _primed(_merged(self.client, choices, requester))
            return self._completion_stream(request, prompts, items, model, include_usage)
        finals = await self._collect(choices, requester)
        out = []
        for i, c in sorted(finals.items()):
            prefix = prompts[i // request.n] if request.echo else ""
            out.append(CompletionChoice(
                index=i, text=prefix + c["response"], logprobs=_completion_logprobs([c], len(prefix)),
                finish_reason=translate.finish_reason(c["finish_reason"]), sources=c.get("sources") or None,
            ))
        return Completion(id=new_id("cmpl"), created=now(), model=model, choices=out,
                          system_fingerprint=self.fingerprint(model),
                          usage=_usage(finals, len(prompts), request.n))

    async def _completion_stream(self, request: CompletionFields, prompts: list[str],
                                 items: AsyncGenerator[tuple[int, Chunk], None], model: str,
                                 include_usage: bool) -> AsyncIterator[Completion]:
        rid, created, fp = new_id("cmpl"), now(), self.fingerprint(model)
        usage_field: dict[str, Any] = {"usage": None} if include_usage else {}
        finals: dict[int, Chunk] = {}
        started: set[int] = set()
        async with contextlib.aclosing(items):  # leaving early cancels the engine's work
            async for index, item in items:
                text = item["delta"]
                if request.echo and index not in started:
                    text = prompts[index // request.n] + text
                started.add(index)
                reason = item["finish_reason"]
                if reason is not None:
                    finals[index] = item
                if text or reason is not None or item.get("logprobs"):
                    yield Completion(id=rid, created=created, model=model, system_fingerprint=fp, **usage_field, choices=[
                        CompletionChoice(
                            index=index, text=text, logprobs=_completion_logprobs([item]),
                            finish_reason=translate.finish_reason(reason) if reason is not None else None,
                            sources=item.get("sources") or None,
                        )
                    ])
        if include_usage:
            yield Completion(id=rid, created=created, model=model, choices=[], system_fingerprint=fp,
                             usage=_usage(finals, len(prompts), request.n))

    async def _collect(self, choices: list[EvalParams], requester: Requester = None) -> dict[int, Chunk]:
        """Run every choice to its final chunk (stream_output is off: one chunk each)."""
        finals: dict[int, Chunk] = {}
        logprobs: dict[int, list[dict[str, Any]]] = {}
        async for index, item in _merged(self.client, choices, requester):
            logprobs.setdefault(index, []).extend(item.get("logprobs") or [])
            if item["finish_reason"] is not None:
                finals[index] = {**item, "logprobs": logprobs[index]}
        return finals

