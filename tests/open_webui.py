"""A chat body like Open WebUI's first request with its built-in tools: 36 function tools
whose specs total about 6,600 tokens of the default model, a system prompt and a question.

Open WebUI (native function calling) sends every enabled tool's spec with each chat; the
specs here are written for the test (names and fields of the kind it sends: web search,
memory, notes, knowledge, images, code), not copied from it.
"""

from __future__ import annotations

from typing import Any

AREAS = ("web", "memory", "notes", "knowledge", "image", "code", "calendar", "files", "chat")
ACTIONS = ("search", "get", "create", "update")


def _tool(area: str, action: str) -> dict[str, Any]:
    fields = {
        "query": ("string", f"What to {action} in the {area} store, in the user's own words."),
        "limit": ("integer", f"Most {area} items to return, from 1 to 50."),
        "include_content": ("boolean", "Return each item's full content, not only its title."),
        "collection": ("string", f"The {area} collection to use; omit it for the default one."),
    }
    properties: dict[str, Any] = {}
    for name, (kind, text) in fields.items():
        properties[name] = {"type": kind, "description": text}
        if kind == "array":
            properties[name]["items"] = {"type": "string"}
    return {"type": "function", "function": {
        "name": f"{action}_{area}",
        "description": f"{action.capitalize()} {area} items for the user, when the answer needs "
                       f"{area} data that is not in the conversation yet.",
        "parameters": {"type": "object", "properties": properties, "required": ["query"]}}}


def open_webui_tools() -> list[dict[str, Any]]:
    """36 tool specs (9 areas x 4 actions)."""
    return [_tool(area, action) for area in AREAS for action in ACTIONS]


def open_webui_chat(model: str) -> dict[str, Any]:
    """The body of the first chat, streamed, as Open WebUI sends it (no max_tokens)."""
    return {"model": model, "stream": True, "stream_options": {"include_usage": True},
            "tools": open_webui_tools(),
            "messages": [{"role": "system", "content": "You are a helpful assistant. Use the tools "
                                                       "when they help."},
                         {"role": "user", "content": "What can you do for me? Answer in one sentence."}]}
