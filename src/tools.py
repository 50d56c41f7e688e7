"""Tool calling: the prompt the model sees, the grammar its calls must follow, and the parser.

A model whose chat template renders tools (src/engine/prompting.py decides) gets the tools,
its earlier calls and the tool results in the template's own format (:func:`template_message`).
Every other model gets the fallback format (docs/structured_output.md; the default SmolLM2
template has no tool support):

- the tools are listed in the system prompt as JSON, with the instruction to answer a call
  as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``;
- an assistant message with ``tool_calls`` is rendered as those ``<tool_call>`` blocks;
- a ``tool`` message is a user turn ``<tool_response name="..." id="...">result</tool_response>``.

Either way the answer is constrained to one format, Hermes/Qwen's ``<tool_call>`` blocks: a
Lark grammar (llguidance) embedding the JSON schema of every offered function. ``required``
allows only calls, a named function exactly one call to it, ``auto`` plain text (not
starting with ``<``) or calls, ``none`` offers no tools; with ``parallel_tool_calls`` one or
more calls, separated by a newline, else exactly one. Arguments are generated with fixed separators, so the
serving layer can cut the stream into OpenAI's tool-call deltas (:class:`ToolCallStream`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from src.errors import InvalidParamsError

OPEN, CLOSE = "<tool_call>", "</tool_call>"
CALL_PREFIX = OPEN + '{"name": "'
ARGS_INFIX = '", "arguments": '
CALL_SEPARATOR = "\n"  # between the calls of one answer
JSON_LAYOUT = {"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": False}
TOOLS_INSTRUCTION = (
    "You can call these tools (JSON schemas of their arguments):\n{tools}\n"
    "To call a tool, answer only with <tool_call>{{\"name\": <tool name>, \"arguments\": "
    "<arguments as a JSON object>}}</tool_call>."
)


def functions(tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``function`` objects of OpenAI ``tools`` (type "function"); refuses others (400)."""
    out = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(function, dict) \
                or not isinstance(function.get("name"), str) or not function["name"]:
            raise InvalidParamsError("each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}",
                                     param=f"tools[{i}]")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise InvalidParamsError("function.parameters must be a JSON schema object",
                                     param=f"tools[{i}].function.parameters")
        out.append({**function, "parameters": parameters})
    return out


def chosen_name(tool_choice: str | dict[str, Any] | None) -> str | None:
    """The function a ``{"type": "function", "function": {"name": ...}}`` tool_choice names."""
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        if not isinstance(name, str) or not name:
            raise InvalidParamsError("tool_choice must name a function: {\"type\": \"function\", "
                                     "\"function\": {\"name\": ...}}", param="tool_choice")
        return name
    return None


def offered(tools: Sequence[dict[str, Any]], tool_choice: str | dict[str, Any] | None) -> list[dict[str, Any]]:
    """The functions the model may call under ``tool_choice`` (none for "none")."""
    if not tools or tool_choice == "none":
        return []
    funcs = functions(tools)
    name = chosen_name(tool_choice)
    if name is None:
        return funcs
    picked = [f for f in funcs if f["name"] == name]
    if not picked:
        raise InvalidParamsError(f"tool_choice names {name!r}, which is not in tools", param="tool_choice")
    return picked


def must_call(tools: Sequence[dict[str, Any]], tool_choice: str | dict[str, Any] | None) -> bool:
    return bool(tools) and (tool_choice == "required" or isinstance(tool_choice, dict))


def parallel(tool_choice: str | dict[str, Any] | None, parallel_tool_calls: bool) -> bool:
    """Whether an answer may hold several calls: ``parallel_tool_calls``, except that a
    tool_choice naming a function asks for one call to it (as vLLM does)."""
    return parallel_tool_calls and chosen_name(tool_choice) is None


def call_schema(funcs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON schema of one call to any of ``funcs``: {"name": const, "arguments": schema}."""
    options = []
    for f in funcs:
        parameters = dict(f["parameters"])
        defs = parameters.pop("$defs", None)
        option: dict[str, Any] = {
            "type": "object", "properties": {"name": {"const": f["name"]}, "arguments": parameters},
            "required": ["name", "arguments"], "additionalProperties": False,
        }
        if defs:  # keep "#/$defs/..." references resolvable at the top of the call schema
            option["$defs"] = defs
        options.append(option)
    if len(options) == 1:
        schema = options[0]
    else:
        defs = {}
        for option in options:
            defs.update(option.pop("$defs", {}))
        schema = {"anyOf": options, **({"$defs": defs} if defs else {})}
    return {**schema, "x-guidance": JSON_LAYOUT}


def call_grammar(funcs: Sequence[dict[str, Any]], required: bool, parallel: bool = False) -> str:
    """The Lark grammar of an answer: calls (``required``), or text or calls (``auto``); one
    call, or (``parallel``) one or more separated by a newline."""
    call = f'call: "{OPEN}" %json {json.dumps(call_schema(funcs))} "{CLOSE}"'
    calls = f"calls: call ({json.dumps(CALL_SEPARATOR)} call)*" if parallel else "calls: call"
    if required:
        return f"start: calls\n{calls}\n{call}\n"
    return f"start: TEXT | calls\n{calls}\n{call}\nTEXT: /[^<][\\s\\S]*/\n"


def tools_instruction(funcs: Sequence[dict[str, Any]]) -> str:
    listed = "\n".join(json.dumps({"name": f["name"], "description": f.get("description", ""),
                                   "parameters": f["parameters"]}) for f in funcs)
    return TOOLS_INSTRUCTION.format(tools=listed)


def fallback_messages(messages: Sequence[dict[str, Any]], funcs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-shaped chat messages in the fallback format: the instruction listing ``funcs``
    at the end of the system prompt (one is added when there is none), tool turns as text."""
    out = [render_history_message(m) for m in messages]
    if funcs:
        instruction = tools_instruction(funcs)
        if out and out[0]["role"] == "system":
            out[0] = {**out[0], "content": f"{out[0]['content']}\n{instruction}".strip()}
        else:
            out.insert(0, {"role": "system", "content": instruction})
    return out


def template_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message as Hugging Face chat templates read it: an assistant's ``tool_calls`` with
    ``function.arguments`` as a dict, text content ("" rather than None)."""
    out = native_history_message(message)
    if out.get("tool_calls"):
        out["tool_calls"] = [{"id": call.get("id", ""), "type": "function",
                              "function": {"name": (call.get("function") or {}).get("name", ""),
                                           "arguments": _arguments((call.get("function") or {}).get("arguments"))}}
                             for call in out["tool_calls"]]
    if out.get("content") is None:
        out["content"] = ""
    return out


def _arguments(arguments: Any) -> Any:
    """A call's arguments as a JSON value (a string that does not parse stays a string)."""
    if not isinstance(arguments, str):
        return arguments if arguments is not None else {}
    try:
        return json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return arguments


def render_history_message(message: dict[str, Any]) -> dict[str, Any]:
    """An assistant message with tool_calls, or a tool message, in the fallback format."""
    if message.get("role") == "assistant" and message.get("tool_calls"):
        blocks = []
        for call in message["tool_calls"]:
            function = call.get("function") or {}
            parsed = _arguments(function.get("arguments"))
            blocks.append(OPEN + json.dumps({"name": function.get("name", ""), "arguments": parsed}) + CLOSE)
        text = str(message.get("content") or "")
        return {"role": "assistant", "content": "\n".join(([text] if text else []) + blocks)}
    if message.get("role") == "tool":
        name = f' name="{message["name"]}"' if message.get("name") else ""
        call_id = f' id="{message["tool_call_id"]}"' if message.get("tool_call_id") else ""
        return {"role": "user",
                "content": f"<tool_response{name}{call_id}>{message.get('content') or ''}</tool_response>"}
    if isinstance(message.get("content"), list):  # content parts (images): left as they are
        return dict(message)
    return {"role": str(message["role"]), "content": str(message.get("content") or "")}


def native_history_message(message: dict[str, Any]) -> dict[str, Any]:
    """A history message for an engine that reads OpenAI's tool turns itself: as given, with
    text content (assistant ``tool_calls``, ``tool`` messages with ``tool_call_id``)."""
    out: dict[str, Any] = {"role": str(message["role"]), "content": message.get("content") or ""}
    for key in ("tool_calls", "tool_call_id", "name"):
        if message.get(key):
            out[key] = message[key]
    if out["role"] == "assistant" and out.get("tool_calls") and not message.get("content"):
        out["content"] = None
    return out


@dataclass
class ToolCall:
    """One call as OpenAI returns it: id, function name and arguments as a JSON string."""

    id: str
    name: str
    arguments: str


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def parse_tool_calls(text: str, keep_repeats: bool = False) -> list[ToolCall]:
    """The ``<tool_call>`` blocks of an answer (empty when the model answered in text); a call
    that repeats an earlier one exactly (name and arguments) is left out unless ``keep_repeats``."""
    calls: list[ToolCall] = []
    seen: set[tuple[str, str]] = set()
    rest = text.strip()
    while rest.startswith(OPEN):
        body, end = None, rest.find(CLOSE)
        while end >= 0 and body is None:  # the first </tool_call> after a complete JSON body
            try:
                body = json.loads(rest[len(OPEN):end])
            except json.JSONDecodeError:
                end = rest.find(CLOSE, end + 1)
        if not isinstance(body, dict) or "name" not in body:
            break
        call = ToolCall(new_call_id(), str(body["name"]), json.dumps(body.get("arguments", {})))
        if keep_repeats or (call.name, call.arguments) not in seen:
            calls.append(call)
        seen.add((call.name, call.arguments))
        rest = rest[end + len(CLOSE):].lstrip()
    return calls


def repeats_a_call(text: str) -> bool:
    """The answer ends with a complete call that repeats an earlier one exactly: a model
    looping (the tiny default model does, given the chance of several calls)."""
    if not text.endswith(CLOSE):
        return False
    calls = [(c.name, c.arguments) for c in parse_tool_calls(text, keep_repeats=True)]
    return calls[-1:] != [] and calls[-1] in calls[:-1]


TAIL = "}" + CLOSE  # the end of a call after its arguments


def _call_end(arguments: str) -> int:
    """Where the ``}</tool_call>`` that closes a call starts in the text after its
    ``"arguments": ``: the first one after a complete JSON value (-1: not yet)."""
    at = arguments.find(TAIL)
    while at >= 0:
        try:
            json.loads(arguments[:at])
            return at
        except json.JSONDecodeError:
            at = arguments.find(TAIL, at + 1)
    return -1


class ToolCallStream:
    """Cuts a streamed answer into text, or OpenAI tool-call deltas as the calls are generated.

    ``feed(delta)`` returns events: ``("text", s)``; for each call, ``("call", (index,
    ToolCall with empty arguments))`` once its function name is complete, then
    ``("arguments", (index, fragment))``; a call's closing ``}</tool_call>`` is never sent.
    A later call is held back while it may still be an exact repeat of an earlier one, and
    dropped if it is one (as :func:`parse_tool_calls` drops it).
    """

    def __init__(self) -> None:
        self.buffer = ""
        self.mode = "undecided"  # undecided | text | call
        self.calls: list[ToolCall] = []
        self.done: set[tuple[str, str]] = set()  # (name, arguments text) of complete calls
        self.start = 0  # where the next call's text starts in the buffer
        self.args_at = -1  # where the open call's arguments start (-1: no call open)
        self.name = ""  # the open call's function name
        self.shown = False  # the open call's first delta went out
        self.sent = 0  # characters of the open call's arguments already sent

    def feed(self, delta: str, final: bool = False) -> list[tuple[str, Any]]:
        self.buffer += delta
        if self.mode == "text":
            return [("text", delta)] if delta else []
        if self.mode == "undecided":
            stripped = self.buffer.lstrip()
            if not stripped:
                return []
            if not (OPEN.startswith(stripped[:len(OPEN)]) and stripped.startswith("<")):
                self.mode = "text"
                return [("text", self.buffer)]
            self.mode = "call" if stripped.startswith(OPEN) else "undecided"
            if self.mode == "undecided":
                return [("text", self.buffer)] if final else []
        return self._call_events(final)

    def _call_events(self, final: bool) -> list[tuple[str, Any]]:
        events: list[tuple[str, Any]] = []
        while True:
            if self.args_at < 0:  # between calls: wait for the next one's name
                rest = self.buffer[self.start:]
                text = rest.lstrip()
                infix = text.find(ARGS_INFIX, len(CALL_PREFIX))
                if not text.startswith(CALL_PREFIX) or infix < 0:
                    return events
                self.name, self.shown, self.sent = text[len(CALL_PREFIX):infix], False, 0
                self.args_at = self.start + len(rest) - len(text) + infix + len(ARGS_INFIX)
            args = self.buffer[self.args_at:]
            end = _call_end(args)
            complete = args[:end] if end >= 0 else None
            sendable = complete if complete is not None else args if final else args[:max(0, len(args) - len(TAIL))]
            if not self.shown:
                repeat = (self.name, complete) in self.done if complete is not None else not final and any(
                    name == self.name and earlier.startswith(sendable) for name, earlier in self.done)
                if repeat and complete is None:
                    return events  # it may still turn out to be a repeat: hold it
                if not repeat:
                    self.calls.append(ToolCall(new_call_id(), self.name, ""))
                    self.shown = True
                    events.append(("call", (len(self.calls) - 1, self.calls[-1])))
            if self.shown and len(sendable) > self.sent:
                events.append(("arguments", (len(self.calls) - 1, sendable[self.sent:])))
                self.sent = len(sendable)
            if complete is None:
                return events
            self.done.add((self.name, complete))  # next: the call after this one
            self.start, self.args_at = self.args_at + end + len(TAIL), -1
