"""Tool calling: the prompt the model sees, the grammar its call must follow, and the parser.

Every model gets this format (docs/structured_output.md); the default SmolLM2 template has
no tool support, and templates with their own tool format are not used for tools yet:

- the tools are listed in the system prompt as JSON, with the instruction to answer a call
  as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``;
- an assistant message with ``tool_calls`` is rendered as those ``<tool_call>`` blocks;
- a ``tool`` message is a user turn ``<tool_response name="..." id="...">result</tool_response>``.

The call is enforced by a Lark grammar (llguidance) embedding the JSON schema of every
offered function: ``required`` or a named function allow only a call (one per answer),
``auto`` allows plain text (not starting with ``<``) or a call, ``none`` offers no tools.
Arguments are generated with fixed separators, so the serving layer can cut the stream into
OpenAI's tool-call deltas (:class:`ToolCallStream`).
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


def call_grammar(funcs: Sequence[dict[str, Any]], required: bool) -> str:
    """The Lark grammar of an answer: a call (``required``), or text or a call (``auto``)."""
    call = f'call: "{OPEN}" %json {json.dumps(call_schema(funcs))} "{CLOSE}"'
    if required:
        return f"start: call\n{call}\n"
    return f"start: TEXT | call\n{call}\nTEXT: /[^<][\\s\\S]*/\n"


def tools_instruction(funcs: Sequence[dict[str, Any]]) -> str:
    listed = "\n".join(json.dumps({"name": f["name"], "description": f.get("description", ""),
                                   "parameters": f["parameters"]}) for f in funcs)
    return TOOLS_INSTRUCTION.format(tools=listed)


def render_history_message(message: dict[str, Any]) -> dict[str, str]:
    """An assistant message with tool_calls, or a tool message, in the fallback format."""
    if message.get("role") == "assistant" and message.get("tool_calls"):
        blocks = []
        for call in message["tool_calls"]:
            function = call.get("function") or {}
            arguments = function.get("arguments") or "{}"
            try:
                parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
            except json.JSONDecodeError:
                parsed = arguments
            blocks.append(OPEN + json.dumps({"name": function.get("name", ""), "arguments": parsed}) + CLOSE)
        text = str(message.get("content") or "")
        return {"role": "assistant", "content": "\n".join(([text] if text else []) + blocks)}
    if message.get("role") == "tool":
        name = f' name="{message["name"]}"' if message.get("name") else ""
        call_id = f' id="{message["tool_call_id"]}"' if message.get("tool_call_id") else ""
        return {"role": "user",
                "content": f"<tool_response{name}{call_id}>{message.get('content') or ''}</tool_response>"}
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


def parse_tool_calls(text: str) -> list[ToolCall]:
    """The ``<tool_call>`` blocks of an answer (empty when the model answered in text)."""
    calls = []
    rest = text.strip()
    while rest.startswith(OPEN):
        end = rest.find(CLOSE)
        if end < 0:
            break
        try:
            body = json.loads(rest[len(OPEN):end])
        except json.JSONDecodeError:
            break
        if not isinstance(body, dict) or "name" not in body:
            break
        calls.append(ToolCall(new_call_id(), str(body["name"]), json.dumps(body.get("arguments", {}))))
        rest = rest[end + len(CLOSE):].lstrip()
    return calls


class ToolCallStream:
    """Cuts a streamed answer into text, or OpenAI tool-call deltas as the call is generated.

    ``feed(delta)`` returns events: ``("text", s)``, ``("call", ToolCall with empty
    arguments)`` once the function name is complete, then ``("arguments", fragment)``;
    the closing ``}</tool_call>`` tail is held back and never sent.
    """

    def __init__(self) -> None:
        self.buffer = ""
        self.mode = "undecided"  # undecided | text | call
        self.sent = 0  # characters of the arguments already sent
        self.call: ToolCall | None = None

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
        text = self.buffer.lstrip()
        if self.call is None:
            infix = text.find(ARGS_INFIX, len(CALL_PREFIX))
            if not text.startswith(CALL_PREFIX) or infix < 0:
                return events
            self.call = ToolCall(new_call_id(), text[len(CALL_PREFIX):infix], "")
            events.append(("call", self.call))
        args = text[text.find(ARGS_INFIX) + len(ARGS_INFIX):]
        tail = "}" + CLOSE
        if final and args.endswith(tail):
            args = args[:-len(tail)]
        elif not final:
            args = args[:max(0, len(args) - len(tail))]
        if len(args) > self.sent:
            events.append(("arguments", args[self.sent:]))
            self.sent = len(args)
        return events
