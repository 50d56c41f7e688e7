"""The structured-output test set: JSON schemas and tool definitions with a prompt each.

Shared by tests/integration/test_structured_output.py, the e2e tool tests and
bench/structured.py. Covers flat and nested objects, arrays, enums, ``$defs``/``$ref``,
numbers and strings with bounds, ``additionalProperties: false`` and optional fields.
"""

from __future__ import annotations

from typing import Any

NAME = {"type": "string", "minLength": 1, "maxLength": 24}

#: (prompt, schema)
SCHEMAS: list[tuple[str, dict[str, Any]]] = [
    ("Describe a person.", {
        "type": "object", "properties": {"name": NAME, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
        "required": ["name", "age"], "additionalProperties": False}),
    ("Is water wet? Answer with a boolean.", {
        "type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"],
        "additionalProperties": False}),
    ("Give the temperature in Paris.", {
        "type": "object", "properties": {"city": NAME, "celsius": {"type": "number", "minimum": -60, "maximum": 60}},
        "required": ["city", "celsius"], "additionalProperties": False}),
    ("Pick a colour.", {
        "type": "object", "properties": {"colour": {"enum": ["red", "green", "blue"]}}, "required": ["colour"],
        "additionalProperties": False}),
    ("List three fruits.", {
        "type": "object", "properties": {"fruits": {"type": "array", "items": NAME, "minItems": 3, "maxItems": 3}},
        "required": ["fruits"], "additionalProperties": False}),
    ("Give a book with its author.", {
        "type": "object", "properties": {
            "title": NAME, "author": {"type": "object", "properties": {"first": NAME, "last": NAME},
                                      "required": ["first", "last"], "additionalProperties": False}},
        "required": ["title", "author"], "additionalProperties": False}),
    ("Give two points.", {
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                            "required": ["x", "y"], "additionalProperties": False}},
        "type": "object", "properties": {"a": {"$ref": "#/$defs/point"}, "b": {"$ref": "#/$defs/point"}},
        "required": ["a", "b"], "additionalProperties": False}),
    ("Rate this movie from 1 to 5.", {
        "type": "object", "properties": {"stars": {"type": "integer", "minimum": 1, "maximum": 5},
                                         "comment": {"type": "string", "maxLength": 40}},
        "required": ["stars"], "additionalProperties": False}),
    ("Classify the sentiment of 'I love it'.", {
        "type": "object", "properties": {"label": {"type": "string", "enum": ["positive", "negative", "neutral"]},
                                         "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
        "required": ["label", "confidence"], "additionalProperties": False}),
    ("Give a product.", {
        "type": "object", "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"},
                                         "price": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000},
                                         "in_stock": {"type": "boolean"}},
        "required": ["sku", "price", "in_stock"], "additionalProperties": False}),
    ("Give a list of up to two tags.", {
        "type": "object", "properties": {"tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 2}},
        "required": ["tags"], "additionalProperties": False}),
    ("Describe a company and its employees.", {
        "$defs": {"employee": {"type": "object", "properties": {"name": NAME, "role": {"enum": ["dev", "ops", "pm"]}},
                               "required": ["name", "role"], "additionalProperties": False}},
        "type": "object", "properties": {"company": NAME, "staff": {"type": "array", "items": {"$ref": "#/$defs/employee"},
                                                                   "minItems": 1, "maxItems": 2}},
        "required": ["company", "staff"], "additionalProperties": False}),
    ("What is 2 + 2?", {
        "type": "object", "properties": {"result": {"type": "integer"}}, "required": ["result"],
        "additionalProperties": False}),
    ("Give an address.", {
        "type": "object", "properties": {"street": NAME, "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                                         "country": {"const": "FR"}},
        "required": ["street", "zip", "country"], "additionalProperties": False}),
    ("Give a matrix of 2 by 2 integers.", {
        "type": "object", "properties": {"rows": {"type": "array", "minItems": 2, "maxItems": 2, "items": {
            "type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": -9, "maximum": 9}}}},
        "required": ["rows"], "additionalProperties": False}),
    ("Give a user with optional email.", {
        "type": "object", "properties": {"user": NAME, "email": {"type": ["string", "null"], "maxLength": 30}},
        "required": ["user", "email"], "additionalProperties": False}),
    ("Give a shape: a circle or a square.", {
        "type": "object", "properties": {"shape": {"anyOf": [
            {"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "number", "minimum": 0, "maximum": 10}},
             "required": ["kind", "r"], "additionalProperties": False},
            {"type": "object", "properties": {"kind": {"const": "square"}, "side": {"type": "integer", "minimum": 1, "maximum": 10}},
             "required": ["kind", "side"], "additionalProperties": False}]}},
        "required": ["shape"], "additionalProperties": False}),
    ("Give the weekday of today.", {
        "type": "object", "properties": {"day": {"enum": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]},
                                         "week": {"type": "integer", "minimum": 1, "maximum": 53}},
        "required": ["day", "week"], "additionalProperties": False}),
    ("Summarise in a title and at most two keywords.", {
        "type": "object", "properties": {"title": {"type": "string", "minLength": 3, "maxLength": 30},
                                         "keywords": {"type": "array", "items": {"type": "string", "maxLength": 12},
                                                      "maxItems": 2}},
        "required": ["title", "keywords"], "additionalProperties": False}),
    ("Give a tree node with one child.", {
        "$defs": {"leaf": {"type": "object", "properties": {"value": {"type": "integer", "minimum": 0, "maximum": 99}},
                           "required": ["value"], "additionalProperties": False}},
        "type": "object", "properties": {"value": {"type": "integer", "minimum": 0, "maximum": 99},
                                         "child": {"$ref": "#/$defs/leaf"}},
        "required": ["value", "child"], "additionalProperties": False}),
    ("Give a flight.", {
        "type": "object", "properties": {"from": {"type": "string", "pattern": "^[A-Z]{3}$"},
                                         "to": {"type": "string", "pattern": "^[A-Z]{3}$"},
                                         "seats": {"type": "integer", "minimum": 1, "maximum": 9},
                                         "class": {"enum": ["economy", "business"]}},
        "required": ["from", "to", "seats", "class"], "additionalProperties": False}),
    ("Give any object describing a cat.", {"type": "object"}),
]


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required,
                       "additionalProperties": False}}}


CITY = {"type": "string", "minLength": 1, "maxLength": 24}

#: (prompt, tool)
TOOLS: list[tuple[str, dict[str, Any]]] = [
    ("What is the weather in Paris?", _tool("get_weather", "Current weather in a city.",
                                            {"city": CITY, "unit": {"enum": ["celsius", "fahrenheit"]}}, ["city", "unit"])),
    ("Add 2 and 3.", _tool("add", "Add two integers.", {"a": {"type": "integer"}, "b": {"type": "integer"}}, ["a", "b"])),
    ("Send 'hi' to bob@example.com.", _tool("send_email", "Send an email.",
                                            {"to": {"type": "string", "maxLength": 40}, "body": {"type": "string", "maxLength": 40}},
                                            ["to", "body"])),
    ("Find three restaurants in Rome.", _tool("search_places", "Search places.",
                                              {"query": CITY, "limit": {"type": "integer", "minimum": 1, "maximum": 10}},
                                              ["query", "limit"])),
    ("Convert 10 USD to EUR.", _tool("convert_currency", "Convert money.",
                                     {"amount": {"type": "number", "minimum": 0, "maximum": 1e6},
                                      "from": {"type": "string", "pattern": "^[A-Z]{3}$"},
                                      "to": {"type": "string", "pattern": "^[A-Z]{3}$"}}, ["amount", "from", "to"])),
    ("Turn on the kitchen light.", _tool("set_light", "Switch a light.",
                                         {"room": {"enum": ["kitchen", "bedroom", "hall"]}, "on": {"type": "boolean"}},
                                         ["room", "on"])),
    ("Remind me to call mum at 18:00.", _tool("create_reminder", "Create a reminder.",
                                              {"text": {"type": "string", "maxLength": 40},
                                               "time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}},
                                              ["text", "time"])),
    ("Book a table for 4.", _tool("book_table", "Book a restaurant table.",
                                  {"people": {"type": "integer", "minimum": 1, "maximum": 12},
                                   "name": {"type": "string", "maxLength": 24}}, ["people"])),
    ("Translate 'hello' to French.", _tool("translate", "Translate text.",
                                           {"text": {"type": "string", "maxLength": 40},
                                            "target": {"enum": ["fr", "de", "es"]}}, ["text", "target"])),
    ("Tag this note as urgent and work.", _tool("tag_note", "Tag a note.",
                                                {"tags": {"type": "array", "items": {"enum": ["urgent", "work", "home"]},
                                                          "minItems": 1, "maxItems": 3}}, ["tags"])),
    ("Where is order 1234?", _tool("track_order", "Track an order.",
                                   {"order": {"$ref": "#/$defs/order"}}, ["order"])),
]
# a tool with $defs in its parameters
TOOLS[-1][1]["function"]["parameters"]["$defs"] = {
    "order": {"type": "object", "properties": {"id": {"type": "integer", "minimum": 1}},
              "required": ["id"], "additionalProperties": False}}

#: A small Hermes/Qwen2.5-style chat template that renders tools (SmolLM2's own has no tool
#: support): the tools in the system turn, calls as ``<tool_call>\n{...}\n</tool_call>``,
#: results as ``<tool_response>`` user turns.
TOOLS_TEMPLATE = """\
{%- if messages[0].role == 'system' %}{% set system = messages[0].content %}{% else %}{% set system = '' %}{% endif %}
{%- if tools %}<|im_start|>system
{{ system }}

# Tools

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{%- for tool in tools %}{{ '\n' }}{{ tool | tojson }}{% endfor %}{{ '\n' }}</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags.<|im_end|>
{% elif system %}<|im_start|>system
{{ system }}<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'user' or (message.role == 'assistant' and not message.tool_calls) %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% elif message.role == 'assistant' %}<|im_start|>assistant
{%- if message.content %}
{{ message.content }}{% endif %}
{%- for tool_call in message.tool_calls %}{{ '\n' }}<tool_call>
{"name": "{{ tool_call.function.name }}", "arguments": {{ tool_call.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""
