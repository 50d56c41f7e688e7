"""Responses input items -> chat completion messages (the Responses API runs on chat).

- ``instructions`` -> a system message first (never carried over to the next response).
- ``message`` items keep their role; ``input_text`` / ``output_text`` / ``refusal`` parts
  become text parts, ``input_image`` an ``image_url`` part, and an ``input_file`` whose
  data is text is read into the turn as text (``filename`` first). Parts given by a
  /v1/files ``file_id`` were read before (responses_files.py).
- ``function_call`` items become the ``tool_calls`` of an assistant message (consecutive
  calls, and a call right after the assistant's text, share one message) with ``call_id``
  as the tool call id; ``function_call_output`` becomes a ``tool`` message with that id.
- Function ``tools`` in the flat form, ``tool_choice``, ``text.format`` and the sampling
  fields map onto chat's; h2oGPT fields pass through as chat takes them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import TypeAdapter, ValidationError

from openai_server.errors import InvalidRequestError
from openai_server.protocol import ChatCompletionRequest, ChatMessage, ImagePart, TextPart
from openai_server.protocol_responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputFile,
    InputImage,
    InputItem,
    InputText,
    MessageItem,
    OutputTextIn,
    RefusalIn,
    ResponseCreateFields,
    h2ogpt_response_values,
    new_item_id,
)

ITEMS = TypeAdapter(list[InputItem])

#: Item id prefixes, by item type (ids are given to input items that come without one).
ID_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


def request_items(request: ResponseCreateFields) -> list[Any]:
    """The request's input as items, each with an id (a string input is one user message)."""
    if isinstance(request.input, str):
        items: list[Any] = [MessageItem(role="user", content=[InputText(type="input_text", text=request.input)])]
    else:
        items = list(request.input)
    return [item if item.id else item.model_copy(update={"id": new_item_id(ID_PREFIX[item.type])})
            for item in items]


def items_from_wire(data: list[dict[str, Any]]) -> list[Any]:
    """Stored items (input items and output items) as typed input items again."""
    return list(ITEMS.validate_python(data))


def items_to_wire(items: list[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json", exclude_none=True, by_alias=True) for item in items]


def _file_text(part: InputFile) -> str:
    if part.file_url or not part.file_data:
        raise InvalidRequestError("input_file takes the file's content in file_data (a base64 data: URI) "
                                  "or a /v1/files file_id; file_url is not read", param="input",
                                  code="unsupported_input")
    data = part.file_data
    if data.startswith("data:"):
        _, _, data = data.partition(",")
    try:
        text = base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidRequestError("input_file.file_data must be base64 of a UTF-8 text file "
                                  "(add other documents to a collection: /v1/collections)",
                                  param="input", code="unsupported_input") from None
    return f"{part.filename}:\n{text}" if part.filename else text


def _parts(content: str | list[Any]) -> str | list[TextPart | ImagePart]:
    if isinstance(content, str):
        return content
    out: list[TextPart | ImagePart] = []
    for part in content:
        if isinstance(part, InputText | OutputTextIn):
            out.append(TextPart(type="text", text=part.text))
        elif isinstance(part, RefusalIn):
            out.append(TextPart(type="text", text=part.refusal))
        elif isinstance(part, InputImage):
            if not part.image_url:
                raise InvalidRequestError("input_image needs image_url (a data: URI or URL) or a /v1/files file_id",
                                          param="input", code="unsupported_input")
            out.append(ImagePart(type="image_url", image_url={"url": part.image_url, "detail": part.detail}))
        elif isinstance(part, InputFile):
            out.append(TextPart(type="text", text=_file_text(part)))
    return text_only(out)


def text_only(parts: list[TextPart | ImagePart]) -> str | list[TextPart | ImagePart]:
    """Parts that are all text as one string (the same turn; the chat layer on main answers
    a 500 for a list of text parts alone), else the parts."""
    if all(isinstance(p, TextPart) for p in parts):
        return "\n".join(p.text for p in parts if isinstance(p, TextPart))
    return parts


def _text(content: str | list[Any]) -> str:
    parts = _parts(content)
    if isinstance(parts, str):
        return parts
    return "\n".join(p.text for p in parts if isinstance(p, TextPart))


def to_messages(instructions: str | None, items: list[Any]) -> list[ChatMessage]:
    """Chat messages of ``instructions`` and the conversation's items, in order."""
    messages: list[ChatMessage] = []
    if instructions:
        messages.append(ChatMessage(role="system", content=instructions))
    names: dict[str, str] = {}
    for item in items:
        if isinstance(item, MessageItem):
            content = _parts(item.content) if item.role == "user" else _text(item.content)
            messages.append(ChatMessage(role=item.role, content=content))
        elif isinstance(item, FunctionCallItem):
            names[item.call_id] = item.name
            call = {"id": item.call_id, "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments}}
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                last.tool_calls = [*(last.tool_calls or []), call]
            else:
                messages.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
        elif isinstance(item, FunctionCallOutputItem):
            messages.append(ChatMessage(role="tool", tool_call_id=item.call_id, content=_text(item.output),
                                        name=names.get(item.call_id)))
    return messages


def _format(request: ResponseCreateFields) -> dict[str, Any] | None:
    fmt = request.text.format if request.text else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": fmt.name or "response", "schema": fmt.schema_,
                                                   "strict": bool(fmt.strict)}}


def _tool_choice(request: ResponseCreateFields) -> Any:
    choice = request.tool_choice
    if choice is None or isinstance(choice, str):
        return choice
    return {"type": "function", "function": {"name": choice.name}}


def to_chat(request: ResponseCreateFields, messages: list[ChatMessage]) -> ChatCompletionRequest:
    """The chat completion request that answers ``request`` over ``messages``."""
    fields: dict[str, Any] = {
        "model": request.model, "messages": messages, "stream": request.stream,
        "max_tokens": request.max_output_tokens, "parallel_tool_calls": request.parallel_tool_calls,
        "user": request.user, "response_format": _format(request), "tool_choice": _tool_choice(request),
    }
    if request.stream:
        fields["stream_options"] = {"include_usage": True}
    if request.temperature is not None:
        fields["temperature"] = request.temperature
    for name in ("top_p", "presence_penalty", "frequency_penalty"):
        if getattr(request, name) is not None:
            fields[name] = getattr(request, name)
    if request.tools:
        fields["tools"] = [{"type": "function", "function": tool.model_dump(exclude={"type"}, exclude_none=True)}
                           for tool in request.tools]
    fields = {k: v for k, v in fields.items() if v is not None}
    fields.update(h2ogpt_response_values(request))
    try:
        return ChatCompletionRequest.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        raise InvalidRequestError(f"{param}: {message}" if param else message, param=param) from None
