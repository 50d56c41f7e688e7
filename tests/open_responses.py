"""What the Open Responses specification (its OpenAPI document, version 2026-04-24) requires
of the streamed events and the response object that this server sends, as a checker.

The required properties and their JSON types are transcribed from the spec's
``*StreamingEvent`` and ``ResponseResource`` schemas (only the event types we emit). One
known divergence is deliberate: the ``error`` event keeps OpenAI's flat shape
(``code``, ``message``, ``param`` at the top level, which the openai SDK parses as
ResponseErrorEvent) rather than the spec's nested ``error`` payload.
"""

from __future__ import annotations

from typing import Any

_INT, _STR, _OBJ, _LIST, _BOOL, _NUM = int, str, dict, list, bool, (int, float)
_NULL = type(None)

EVENTS: dict[str, dict[str, Any]] = {
    "response.created": {"response": _OBJ},
    "response.in_progress": {"response": _OBJ},
    "response.completed": {"response": _OBJ},
    "response.incomplete": {"response": _OBJ},
    "response.failed": {"response": _OBJ},
    "response.output_item.added": {"output_index": _INT, "item": _OBJ},
    "response.output_item.done": {"output_index": _INT, "item": _OBJ},
    "response.content_part.added": {"item_id": _STR, "output_index": _INT, "content_index": _INT, "part": _OBJ},
    "response.content_part.done": {"item_id": _STR, "output_index": _INT, "content_index": _INT, "part": _OBJ},
    "response.output_text.delta": {"item_id": _STR, "output_index": _INT, "content_index": _INT, "delta": _STR},
    "response.output_text.done": {"item_id": _STR, "output_index": _INT, "content_index": _INT, "text": _STR},
    "response.function_call_arguments.delta": {"item_id": _STR, "output_index": _INT, "delta": _STR},
    "response.function_call_arguments.done": {"item_id": _STR, "output_index": _INT, "arguments": _STR},
}

RESPONSE: dict[str, Any] = {
    "id": _STR, "object": _STR, "created_at": _INT, "completed_at": (_INT, _NULL), "status": _STR,
    "incomplete_details": (_OBJ, _NULL), "model": _STR, "previous_response_id": (_STR, _NULL),
    "instructions": (_STR, _LIST, _NULL), "output": _LIST, "error": (_OBJ, _NULL), "tools": _LIST,
    "tool_choice": (_STR, _OBJ), "truncation": _STR, "parallel_tool_calls": _BOOL, "text": _OBJ,
    "top_p": _NUM, "presence_penalty": _NUM, "frequency_penalty": _NUM, "top_logprobs": _INT,
    "temperature": _NUM, "reasoning": (_OBJ, _NULL), "user": (_STR, _NULL), "usage": (_OBJ, _NULL),
    "max_output_tokens": (_INT, _NULL), "max_tool_calls": (_INT, _NULL), "store": _BOOL,
    "background": _BOOL, "service_tier": _STR, "metadata": _OBJ, "safety_identifier": (_STR, _NULL),
    "prompt_cache_key": (_STR, _NULL),
}

ITEMS: dict[str, dict[str, Any]] = {
    "message": {"type": _STR, "id": _STR, "status": _STR, "role": _STR, "content": _LIST},
    "function_call": {"type": _STR, "id": _STR, "call_id": _STR, "name": _STR, "arguments": _STR, "status": _STR},
}
OUTPUT_TEXT = {"type": _STR, "text": _STR, "annotations": _LIST}
USAGE = {"input_tokens": _INT, "output_tokens": _INT, "total_tokens": _INT, "input_tokens_details": _OBJ,
         "output_tokens_details": _OBJ}


def _check(where: str, data: Any, required: dict[str, Any]) -> list[str]:
    if not isinstance(data, dict):
        return [f"{where}: not an object"]
    problems = []
    for name, kind in required.items():
        if name not in data:
            problems.append(f"{where}: missing {name}")
        elif not isinstance(data[name], kind) or (kind is _INT and isinstance(data[name], bool)):
            problems.append(f"{where}.{name}: {type(data[name]).__name__} is not {kind}")
    return problems


def _item(where: str, item: dict[str, Any]) -> list[str]:
    problems = _check(where, item, ITEMS.get(item.get("type", ""), {"type": _STR}))
    for i, part in enumerate(item.get("content") or []):
        problems += _check(f"{where}.content[{i}]", part, OUTPUT_TEXT)
    return problems


def problems(event: dict[str, Any]) -> list[str]:
    """What ``event`` lacks against the spec (empty when it conforms)."""
    kind = event.get("type", "")
    if kind not in EVENTS:
        return [f"unknown event type {kind!r}"]
    found = _check(kind, event, {"type": _STR, "sequence_number": _INT, **EVENTS[kind]})
    if isinstance(event.get("response"), dict):
        response = event["response"]
        found += _check(f"{kind}.response", response, RESPONSE)
        for i, item in enumerate(response.get("output") or []):
            found += _item(f"{kind}.response.output[{i}]", item)
        if response.get("usage") is not None:
            found += _check(f"{kind}.response.usage", response["usage"], USAGE)
    if isinstance(event.get("item"), dict):
        found += _item(f"{kind}.item", event["item"])
    if isinstance(event.get("part"), dict):
        found += _check(f"{kind}.part", event["part"], OUTPUT_TEXT)
    return found
