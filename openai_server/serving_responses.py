"""Serving of the Responses API: a translator over chat completions, with a store.

``ResponsesService.create`` rebuilds the conversation (the ``previous_response_id`` chain
from the store, then this request's input items), runs it as a chat completion through
:class:`openai_server.serving.CompletionService` (same engine path, constrained
decoding, tools, limits and h2oGPT parameters as chat), and maps the answer onto output
items: a ``message`` with ``output_text`` (sources as ``file_citation`` annotations) and
``function_call`` items. Streamed, the chat chunks become the Responses events in order,
each with its ``sequence_number``. A stored response (``store``, the default) is kept
in the database (src.storage.responses) for its owner only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from openai_server.errors import APIError, InvalidRequestError, NotFoundError, from_exception
from openai_server.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionFields, ChatMessage
from openai_server.protocol_responses import (
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    ContentPartEvent,
    DeletedResponse,
    ErrorEvent,
    FileCitation,
    IncompleteDetails,
    InputItemList,
    LifecycleEvent,
    OutputFunctionCall,
    OutputItem,
    OutputItemEvent,
    OutputMessage,
    OutputText,
    ResponseCreateFields,
    ResponseErrorBody,
    ResponseObject,
    ResponseUsage,
    Status,
    StreamEvent,
    TextDeltaEvent,
    TextDoneEvent,
    new_item_id,
)
from openai_server.responses_files import resolve_file_ids
from openai_server.responses_input import items_from_wire, items_to_wire, request_items, to_chat, to_messages
from openai_server.serving import ChatStream, CompletionService
from openai_server.serving_documents import FileService
from src.contract import Requester
from src.storage.responses import ResponseStore, StoredResponse

log = logging.getLogger(__name__)


def citations(sources: list[dict[str, Any]] | None, at: int) -> list[FileCitation]:
    """h2oGPT's sources as file_citation annotations (one per document, at the text's end)."""
    out, seen = [], set()
    for source in sources or []:
        name = str(source.get("source") or "")
        if name and name not in seen:
            seen.add(name)
            out.append(FileCitation(file_id=name, filename=os.path.basename(name) or name, index=at))
    return out


def _usage(usage: Any) -> ResponseUsage | None:
    if usage is None:
        return None
    return ResponseUsage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                         total_tokens=usage.total_tokens)


def _finished(response: ResponseObject, finish_reason: str | None) -> ResponseObject:
    incomplete = finish_reason == "length"
    status: Status = "incomplete" if incomplete else "completed"
    for item in response.output:
        item.status = status
    return response.model_copy(update={
        "status": status, "completed_at": int(time.time()),
        "incomplete_details": IncompleteDetails(reason="max_output_tokens") if incomplete else None})


class ResponsesService:
    """POST /v1/responses and the stored responses, over chat completions and a store."""

    def __init__(self, completions: CompletionService, store: Callable[[], ResponseStore],
                 files: FileService | None = None) -> None:
        self.completions = completions
        self.files = files  # /v1/files, for input parts given by file_id
        self._open_store = store
        self._store: ResponseStore | None = None

    def store(self) -> ResponseStore:
        """The database, opened at first use (so that an app that never stores opens none)."""
        if self._store is None:
            self._store = self._open_store()
        return self._store

    async def _db(self, method: str, *args: Any) -> Any:
        """``ResponseStore.<method>(*args)`` off the event loop (the database calls block)."""
        return await asyncio.to_thread(lambda: getattr(self.store(), method)(*args))

    # --- create ---------------------------------------------------------------------------
    async def create(self, request: ResponseCreateFields, owner: str, requester: Requester | None = None,
                     file_owner: str = "") -> ResponseObject | AsyncIterator[StreamEvent]:
        """``owner`` owns the stored responses; ``file_owner`` the files that input parts
        name by ``file_id`` (the request's API key, as /v1/files scopes them)."""
        history: list[Any] = []
        if request.previous_response_id:
            chain = await self._db("chain", owner, request.previous_response_id)
            if chain is None:
                raise NotFoundError(f"the response {request.previous_response_id!r} does not exist",
                                    param="previous_response_id", code="response_not_found")
            for record in chain:
                history += items_from_wire(record.input_items) + items_from_wire(record.response.get("output", []))
        items = request_items(request)
        conversation = history + items
        if self.files is not None and file_owner:
            conversation = await resolve_file_ids(conversation, self.files, file_owner)
        messages = to_messages(request.instructions, conversation)
        chat, result = await self._chat(request, messages, requester)
        base = self._base(request, chat, result.model)
        if isinstance(result, ChatCompletion):
            response = self._from_completion(base, result)
            if request.store:
                await self._save(owner, response, items)
            return response
        return self._events(base, result.chunks, owner, items, request.store)

    async def _chat(self, request: ResponseCreateFields, messages: list[ChatMessage],
                    requester: Requester | None) -> tuple[ChatCompletionFields, ChatCompletion | ChatStream]:
        """The chat request and its completion; with ``truncation: auto`` the oldest turns go
        until the conversation fits the context window."""
        while True:
            chat = to_chat(request, messages)
            try:
                return chat, await self.completions.chat(chat, requester)
            except Exception as exc:
                error = from_exception(exc)
                turns = [i for i, m in enumerate(messages) if m.role not in ("system", "developer")]
                if request.truncation != "auto" or error.code != "context_length_exceeded" or len(turns) < 2:
                    raise error from None
                del messages[turns[0]]
                while messages and messages[0].role == "tool":  # a result without its call
                    del messages[0]

    def _base(self, request: ResponseCreateFields, chat: ChatCompletionFields, model: str) -> ResponseObject:
        tool_choice: Any = request.tool_choice or "auto"
        return ResponseObject(
            id=new_item_id("resp"), model=model, instructions=request.instructions,
            max_output_tokens=request.max_output_tokens, metadata=request.metadata or {},
            parallel_tool_calls=request.parallel_tool_calls, previous_response_id=request.previous_response_id,
            store=request.store, temperature=chat.temperature, top_p=chat.top_p,
            presence_penalty=chat.presence_penalty, frequency_penalty=chat.frequency_penalty,
            text={"format": request.text.format.wire()} if request.text else {"format": {"type": "text"}},
            tool_choice=tool_choice if isinstance(tool_choice, str) else tool_choice.model_dump(),
            tools=[t.model_dump(exclude_none=True) for t in request.tools or []],
            truncation=request.truncation or "disabled", user=request.user)

    def _from_completion(self, base: ResponseObject, result: ChatCompletion) -> ResponseObject:
        choice = result.choices[0]
        output: list[OutputItem] = []
        calls = choice.message.tool_calls or []
        text = choice.message.content or ""
        if text or not calls:
            output.append(OutputMessage(id=new_item_id("msg"), status="completed", content=[
                OutputText(text=text, annotations=citations(choice.sources, len(text)))]))
        for call in calls:
            output.append(OutputFunctionCall(id=new_item_id("fc"), status="completed", call_id=call.id,
                                             name=call.function.name or "", arguments=call.function.arguments or ""))
        response = base.model_copy(update={"output": output, "usage": _usage(result.usage),
                                           "sources": choice.sources or None})
        return _finished(response, choice.finish_reason)

    async def _save(self, owner: str, response: ResponseObject, items: list[Any]) -> None:
        record = StoredResponse(id=response.id, owner=owner, response=response.wire(),
                                input_items=items_to_wire(items), previous_response_id=response.previous_response_id,
                                created_at=float(response.created_at))
        await self._db("save", record)

    # --- streaming --------------------------------------------------------------------------
    async def _events(self, base: ResponseObject, chunks: AsyncGenerator[ChatCompletionChunk, None], owner: str,
                      items: list[Any], store: bool) -> AsyncIterator[StreamEvent]:
        counter = itertools.count()
        stream = _EventBuilder(base)

        def numbered(event: StreamEvent) -> StreamEvent:
            event.sequence_number = next(counter)
            return event

        yield numbered(LifecycleEvent(type="response.created", response=base.model_copy(deep=True)))
        yield numbered(LifecycleEvent(type="response.in_progress", response=base.model_copy(deep=True)))
        try:
            async with contextlib.aclosing(chunks):  # leaving early cancels the engine's work
                async for chunk in chunks:
                    for event in stream.feed(chunk):
                        yield numbered(event)
        except Exception as exc:  # the status line is gone: report in-band, then response.failed
            error = exc if isinstance(exc, APIError) else from_exception(exc)
            yield numbered(ErrorEvent(code=error.code or error.type, message=error.message, param=error.param))
            failed = base.model_copy(update={"status": "failed", "output": stream.output,
                                             "error": ResponseErrorBody(code=error.code or "server_error",
                                                                        message=error.message)})
            yield numbered(LifecycleEvent(type="response.failed", response=failed))
            return
        for event in stream.close():
            yield numbered(event)
        response = stream.response()
        if store:
            await self._save(owner, response, items)
        kind = "response.incomplete" if response.status == "incomplete" else "response.completed"
        yield numbered(LifecycleEvent(type=kind, response=response))

    # --- stored responses ---------------------------------------------------------------------
    async def retrieve(self, owner: str, response_id: str) -> ResponseObject:
        return ResponseObject.model_validate((await self._record(owner, response_id)).response)

    async def delete(self, owner: str, response_id: str) -> DeletedResponse:
        if not await self._db("delete", owner, response_id):
            raise self._missing(response_id)
        return DeletedResponse(id=response_id)

    async def input_items(self, owner: str, response_id: str, after: str | None = None, limit: int = 20,
                          order: str = "desc") -> InputItemList:
        items = list((await self._record(owner, response_id)).input_items)
        if order == "desc":
            items.reverse()
        if after is not None:
            ids = [i.get("id") for i in items]
            if after not in ids:
                raise InvalidRequestError(f"after: no input item {after!r} in this response", param="after")
            items = items[ids.index(after) + 1:]
        page = items[:limit]
        return InputItemList(data=page, first_id=page[0].get("id") if page else None,
                             last_id=page[-1].get("id") if page else None, has_more=len(items) > limit)

    async def _record(self, owner: str, response_id: str) -> StoredResponse:
        record = await self._db("get", owner, response_id)
        if record is None:
            raise self._missing(response_id)
        assert isinstance(record, StoredResponse)
        return record

    @staticmethod
    def _missing(response_id: str) -> NotFoundError:
        return NotFoundError(f"the response {response_id!r} does not exist", param="response_id",
                             code="response_not_found")


class _EventBuilder:
    """Chat chunks -> Responses events: opens and closes output items as the answer goes."""

    def __init__(self, base: ResponseObject) -> None:
        self.base = base
        self.output: list[OutputItem] = []
        self.message: OutputMessage | None = None  # the open text item
        self.calls: dict[int, OutputFunctionCall] = {}  # open function calls by tool call index
        self.text = ""
        self.finish_reason: str | None = None
        self.sources: list[dict[str, Any]] | None = None
        self.usage: ResponseUsage | None = None

    def feed(self, chunk: ChatCompletionChunk) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                if self.message is None:
                    events += self._open_message()
                assert self.message is not None
                self.text += delta.content
                events.append(TextDeltaEvent(item_id=self.message.id, output_index=self._index(self.message),
                                             content_index=0, delta=delta.content))
            for call in delta.tool_calls or []:
                if call.id:
                    events += self._close_message()
                    item = OutputFunctionCall(id=new_item_id("fc"), status="in_progress", call_id=call.id,
                                              name=call.function.name or "", arguments="")
                    self.calls[call.index] = item
                    self.output.append(item)
                    events.append(OutputItemEvent(type="response.output_item.added", output_index=self._index(item),
                                                  item=item.model_copy()))
                if call.function.arguments and call.index in self.calls:  # the first delta may carry them too
                    item = self.calls[call.index]
                    item.arguments += call.function.arguments
                    events.append(ArgumentsDeltaEvent(item_id=item.id, output_index=self._index(item),
                                                      delta=call.function.arguments))
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
                self.sources = choice.sources or None
        return events

    def _index(self, item: OutputItem) -> int:
        return next(i for i, o in enumerate(self.output) if o is item)

    def _open_message(self) -> list[StreamEvent]:
        self.message = OutputMessage(id=new_item_id("msg"), status="in_progress")
        self.output.append(self.message)
        index = self._index(self.message)
        return [OutputItemEvent(type="response.output_item.added", output_index=index,
                                item=self.message.model_copy(deep=True)),
                ContentPartEvent(type="response.content_part.added", item_id=self.message.id,
                                 output_index=index, content_index=0, part=OutputText(text=""))]

    def _close_message(self, status: Status = "completed") -> list[StreamEvent]:
        if self.message is None:
            return []
        item, self.message = self.message, None
        index = self._index(item)
        part = OutputText(text=self.text, annotations=citations(self.sources, len(self.text)))
        item.content = [part]
        item.status = status
        return [TextDoneEvent(item_id=item.id, output_index=index, content_index=0, text=self.text),
                ContentPartEvent(type="response.content_part.done", item_id=item.id, output_index=index,
                                 content_index=0, part=part),
                OutputItemEvent(type="response.output_item.done", output_index=index, item=item.model_copy(deep=True))]

    def close(self) -> list[StreamEvent]:
        """The closing events of every open item (an empty message when nothing came)."""
        events: list[StreamEvent] = []
        if not self.output:
            events += self._open_message()
        status: Status = "incomplete" if self.finish_reason == "length" else "completed"
        events += self._close_message(status)
        for item in self.calls.values():
            item.status = status
            index = self._index(item)
            events.append(ArgumentsDoneEvent(item_id=item.id, output_index=index, name=item.name,
                                             arguments=item.arguments))
            events.append(OutputItemEvent(type="response.output_item.done", output_index=index,
                                          item=item.model_copy()))
        self.calls = {}
        return events

    def response(self) -> ResponseObject:
        response = self.base.model_copy(update={"output": self.output, "usage": self.usage,
                                                "sources": self.sources})
        return _finished(response, self.finish_reason)
