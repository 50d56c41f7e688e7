"""Serving of the Anthropic Messages API: a translator over chat completions.

A Messages request becomes a chat completion (openai_server.serving.CompletionService,
so the same engine path, tools with constrained arguments, limits and h2oGPT parameters):

- ``system`` (a string or text blocks) -> a system message; ``text`` and ``image`` blocks
  (base64 as a data: URI, or a url) -> the turn's parts; ``tool_use`` blocks -> the
  assistant's ``tool_calls`` (``input`` as JSON arguments, the block id as the call id);
  ``tool_result`` blocks -> ``tool`` messages for that id, before the rest of the user turn.
- ``tools`` with ``input_schema`` -> function tools; ``tool_choice`` auto / any / tool /
  none -> auto / required / named / none; ``disable_parallel_tool_use`` -> one call at most.
- ``stop_sequences``, ``max_tokens``, ``temperature``, ``top_p``; ``top_k`` and the other
  h2oGPT fields go through as chat takes them.

The answer comes back as content blocks (``text``, ``tool_use`` with its input object),
``stop_reason`` end_turn / max_tokens / tool_use / stop_sequence (with ``stop_sequence``, the
string that matched, as the engine's final event names it), and ``usage``; streamed, as
message_start, ping, content_block_start / _delta / _stop, message_delta, message_stop.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from pydantic import BaseModel, ValidationError

from openai_server import translate
from openai_server.errors import APIError, InvalidRequestError, from_exception
from openai_server.errors_anthropic import anthropic_type
from openai_server.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ImagePart,
    TextPart,
    h2ogpt_values,
)
from openai_server.protocol_anthropic import (
    Base64Source,
    ContentBlockDelta,
    ContentBlockStart,
    ContentBlockStop,
    CountTokensFields,
    ErrorDetail,
    ErrorEvent,
    ImageBlock,
    InputJsonDelta,
    Message,
    MessageDelta,
    MessageDeltaBody,
    MessageDeltaUsage,
    MessageParam,
    MessagesFields,
    MessageStart,
    MessageStop,
    Ping,
    StopReason,
    TextBlock,
    TextDelta,
    TextOut,
    TextStart,
    TokenCount,
    ToolResultBlock,
    ToolUseBlock,
    ToolUseOut,
    ToolUseStart,
    Usage,
    new_anthropic_id,
)
from openai_server.responses_input import text_only
from openai_server.serving import CompletionService
from src import contract
from src.contract import Requester

log = logging.getLogger(__name__)

STOP_REASON: dict[str | None, StopReason] = {"length": "max_tokens", "tool_calls": "tool_use"}


def _image(block: ImageBlock) -> ImagePart:
    source = block.source
    url = f"data:{source.media_type};base64,{source.data}" if isinstance(source, Base64Source) else source.url
    return ImagePart(type="image_url", image_url={"url": url})


def _result_text(block: ToolResultBlock) -> str:
    text = block.content if isinstance(block.content, str) else "\n".join(
        b.text for b in block.content if isinstance(b, TextBlock))
    return f"Error: {text}" if block.is_error else text


def _turn(message: MessageParam) -> list[ChatMessage]:
    if isinstance(message.content, str):
        return [ChatMessage(role=message.role, content=message.content)]
    if message.role == "assistant":
        text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
        calls = [{"id": b.id, "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.input)}}
                 for b in message.content if isinstance(b, ToolUseBlock)]
        return [ChatMessage(role="assistant", content=text or None, tool_calls=calls or None)]
    out = [ChatMessage(role="tool", tool_call_id=b.tool_use_id, content=_result_text(b))
           for b in message.content if isinstance(b, ToolResultBlock)]
    parts: list[TextPart | ImagePart] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            parts.append(TextPart(type="text", text=block.text))
        elif isinstance(block, ImageBlock):
            parts.append(_image(block))
    if parts:
        out.append(ChatMessage(role="user", content=text_only(parts)))
    return out


def to_messages(request: MessagesFields | CountTokensFields) -> list[ChatMessage]:
    messages = []
    if request.system:
        system = request.system if isinstance(request.system, str) else "\n".join(b.text for b in request.system)
        messages.append(ChatMessage(role="system", content=system))
    for message in request.messages:
        messages += _turn(message)
    return messages


def _tools(request: MessagesFields | CountTokensFields) -> dict[str, Any]:
    if not request.tools:
        return {}
    fields: dict[str, Any] = {"tools": [
        {"type": "function", "function": {"name": t.name, "description": t.description or "",
                                          "parameters": t.input_schema}} for t in request.tools]}
    choice = request.tool_choice
    if choice is not None:
        fields["tool_choice"] = ({"type": "function", "function": {"name": choice.name}} if choice.type == "tool"
                                 else {"auto": "auto", "any": "required", "none": "none"}[choice.type])
        fields["parallel_tool_calls"] = not choice.disable_parallel_tool_use
    return fields


def to_chat(request: MessagesFields) -> ChatCompletionRequest:
    """The chat completion request that answers a Messages request."""
    fields: dict[str, Any] = {"model": request.model, "messages": to_messages(request),
                              "max_tokens": request.max_tokens, "stream": request.stream, **_tools(request)}
    if request.stream:
        fields["stream_options"] = {"include_usage": True}
    if request.stop_sequences:
        fields["stop"] = request.stop_sequences
    for name in ("temperature", "top_p"):
        if getattr(request, name) is not None:
            fields[name] = getattr(request, name)
    fields.update(h2ogpt_values(request))
    try:
        return ChatCompletionRequest.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        raise InvalidRequestError(f"{param}: {message}" if param else message, param=param) from None


def _input(arguments: str | None) -> dict[str, Any]:
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        log.warning("tool call arguments are not JSON: %.200s", arguments)
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _event_error(exc: BaseException) -> ErrorEvent:
    error = exc if isinstance(exc, APIError) else from_exception(exc)
    return ErrorEvent(error=ErrorDetail(type=anthropic_type(error.status), message=error.message))


class MessagesService:
    """POST /v1/messages and /v1/messages/count_tokens over chat completions."""

    def __init__(self, completions: CompletionService) -> None:
        self.completions = completions

    async def create(self, request: MessagesFields, requester: Requester | None = None) -> Message | AsyncIterator[BaseModel]:
        result = await self.completions.chat(to_chat(request), requester)
        if isinstance(result, ChatCompletion):
            return self._message(result.model, result)
        return self._events(result.model, result.chunks)

    def _message(self, model: str, result: ChatCompletion) -> Message:
        choice = result.choices[0]
        content: list[TextOut | ToolUseOut] = []
        calls = choice.message.tool_calls or []
        if choice.message.content or not calls:
            content.append(TextOut(text=choice.message.content or ""))
        content += [ToolUseOut(id=c.id, name=c.function.name or "", input=_input(c.function.arguments)) for c in calls]
        return Message(id=new_anthropic_id("msg"), model=model, content=content,
                       stop_reason="stop_sequence" if choice.stop_sequence is not None
                       else STOP_REASON.get(choice.finish_reason, "end_turn"),
                       stop_sequence=choice.stop_sequence,
                       usage=Usage(input_tokens=result.usage.prompt_tokens,
                                   output_tokens=result.usage.completion_tokens))

    async def _events(self, model: str, chunks: AsyncGenerator[ChatCompletionChunk, None]) -> AsyncIterator[BaseModel]:
        yield MessageStart(message=Message(id=new_anthropic_id("msg"), model=model))
        yield Ping()
        index = -1  # the open block
        text_open = False
        calls: dict[int, int] = {}  # tool call index -> block index
        reason: str | None = None
        matched: str | None = None  # the stop sequence that ended the answer
        usage = MessageDeltaUsage()
        try:
            async with contextlib.aclosing(chunks):  # leaving early cancels the engine's work
                async for chunk in chunks:
                    if chunk.usage is not None:
                        usage = MessageDeltaUsage(input_tokens=chunk.usage.prompt_tokens,
                                                  output_tokens=chunk.usage.completion_tokens)
                    for choice in chunk.choices:
                        delta = choice.delta
                        if delta.content:
                            if not text_open:
                                index += 1
                                text_open = True
                                yield ContentBlockStart(index=index, content_block=TextStart())
                            yield ContentBlockDelta(index=index, delta=TextDelta(text=delta.content))
                        for call in delta.tool_calls or []:
                            if call.id:
                                if index >= 0:
                                    yield ContentBlockStop(index=index)
                                text_open = False
                                index += 1
                                calls[call.index] = index
                                yield ContentBlockStart(index=index, content_block=ToolUseStart(
                                    id=call.id, name=call.function.name or ""))
                            if call.function.arguments and calls.get(call.index) == index:  # first may carry them
                                yield ContentBlockDelta(index=index, delta=InputJsonDelta(
                                    partial_json=call.function.arguments))
                        if choice.finish_reason is not None:
                            reason = choice.finish_reason
                            matched = choice.stop_sequence
        except Exception as exc:  # the status line is gone: report in-band
            yield _event_error(exc)
            return
        if index < 0:  # nothing came: one empty text block, as Anthropic sends
            index = 0
            yield ContentBlockStart(index=0, content_block=TextStart())
        yield ContentBlockStop(index=index)
        stop_reason: StopReason = "stop_sequence" if matched is not None else STOP_REASON.get(reason, "end_turn")
        yield MessageDelta(delta=MessageDeltaBody(stop_reason=stop_reason, stop_sequence=matched), usage=usage)
        yield MessageStop()

    async def count_tokens(self, request: CountTokensFields) -> TokenCount:
        """The prompt's tokens as the model reads them: the typed conversation with the chat
        template applied (the tool definitions counted as a system message of their JSON;
        images are not counted: the engine's tokenize on main takes text turns only)."""
        model = await self.completions.model_id(request.model)
        messages = [m if not isinstance(m.content, list) else m.model_copy(update={"content": "\n".join(
            p.text for p in m.content if isinstance(p, TextPart))}) for m in to_messages(request)]  # text only
        if request.tools:
            messages.insert(0, ChatMessage(role="system", content=json.dumps(_tools(request)["tools"])))
        counted = await self.completions.client.tokenize(contract.TokenizeRequest(
            model=model, messages=translate.conversation(messages)))
        return TokenCount(input_tokens=counted.count)
