"""A regular expression as a GBNF grammar, for engines that read GBNF (llama.cpp).

``guided_regex`` has vLLM's meaning: the whole answer matches the expression. llama.cpp has
no regex constraint of its own, but its grammars have what a regular expression needs:
literals, character classes, groups, alternatives and ``{m,n}`` repetition. The expression
is parsed by Python's own ``re`` parser and each node written as GBNF, so what is accepted
is Python's syntax.

``\\d``, ``\\w`` and ``\\s`` are the ASCII classes (``[0-9]``, ``[a-zA-Z0-9_]``, space and
``\\t\\n\\r\\f\\v``); ``.`` is any character but a newline (any at all with ``(?s)``);
``^`` / ``$`` / ``\\A`` / ``\\Z`` at the ends are implied. What a grammar cannot say (back
references, lookarounds, word boundaries, ``(?i)``, possessive and atomic forms) is an
``InvalidParamsError`` naming the construct, never a looser grammar.
"""

from __future__ import annotations

import re
import re._constants as sre  # the stdlib parser's opcodes
import re._parser as sre_parse
from typing import Any

from src.errors import InvalidParamsError

_CLASSES = {
    sre.CATEGORY_DIGIT: ("0-9", False), sre.CATEGORY_NOT_DIGIT: ("0-9", True),
    sre.CATEGORY_WORD: ("a-zA-Z0-9_", False), sre.CATEGORY_NOT_WORD: ("a-zA-Z0-9_", True),
    sre.CATEGORY_SPACE: (" \\t\\n\\r\\x0B\\x0C", False), sre.CATEGORY_NOT_SPACE: (" \\t\\n\\r\\x0B\\x0C", True),
}
_ENDS = {sre.AT_BEGINNING, sre.AT_BEGINNING_STRING, sre.AT_END, sre.AT_END_STRING}
_UNSUPPORTED = {
    sre.GROUPREF: "a back reference", sre.GROUPREF_EXISTS: "a conditional group",
    sre.ASSERT: "a lookahead or lookbehind", sre.ASSERT_NOT: "a lookahead or lookbehind",
}


def regex_to_gbnf(pattern: str, param: str = "guided_regex") -> str:
    """``root ::= ...``: a GBNF grammar whose language is the strings ``pattern`` fully matches."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        raise InvalidParamsError(f"{param} is not a valid regular expression: {exc}", param=param) from None
    writer = _Writer(param, bool(parsed.state.flags & re.DOTALL))
    if parsed.state.flags & re.IGNORECASE:
        writer.refuse("case-insensitive matching ((?i))")
    return "root ::= " + (writer.sequence(list(parsed), top=True) or '""')


class _Writer:
    def __init__(self, param: str, dotall: bool) -> None:
        self.param = param
        self.dotall = dotall

    def refuse(self, what: str) -> None:
        raise InvalidParamsError(f"{self.param}: {what} cannot be enforced by a grammar on this backend",
                                 param=self.param)

    def sequence(self, items: list[tuple[Any, Any]], top: bool = False) -> str:
        parts = []
        for index, (op, arg) in enumerate(items):
            if op is sre.AT:
                at_an_end = top and (index == 0 or index == len(items) - 1)
                if arg not in _ENDS or not at_an_end:
                    self.refuse("an anchor or word boundary inside the expression")
                continue
            parts.append(self.node(op, arg))
        return " ".join(p for p in parts if p)

    def node(self, op: Any, arg: Any) -> str:
        if op is sre.LITERAL:
            return '"' + _char(arg) + '"'
        if op is sre.NOT_LITERAL:
            return "[^" + _char(arg) + "]"
        if op is sre.ANY:
            return "[\\U00000000-\\U0010FFFF]" if self.dotall else "[^\\n]"
        if op is sre.IN:
            return self.char_class(arg)
        if op is sre.BRANCH:
            return "(" + " | ".join(self.sequence(list(branch)) or '""' for branch in arg[1]) + ")"
        if op is sre.SUBPATTERN:
            _, add_flags, del_flags, items = arg
            if (add_flags | del_flags) & re.IGNORECASE:
                self.refuse("case-insensitive matching ((?i))")
            return "(" + (self.sequence(list(items)) or '""') + ")"
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):  # lazy or greedy: the same language
            low, high, items = arg
            return "(" + self.sequence(list(items)) + ")" + _repeat(low, high)
        self.refuse(_UNSUPPORTED.get(op, f"the construct {op}"))
        return ""  # not reached

    def char_class(self, items: list[tuple[Any, Any]]) -> str:
        negate = bool(items) and items[0][0] is sre.NEGATE
        body = []
        for op, arg in items[1:] if negate else items:
            if op is sre.LITERAL:
                body.append(_char(arg))
            elif op is sre.RANGE:
                body.append(_char(arg[0]) + "-" + _char(arg[1]))
            elif op is sre.CATEGORY and arg in _CLASSES:
                chars, negated = _CLASSES[arg]
                if negated and (negate or len(items) > 1):
                    self.refuse("a negated class (\\D, \\W, \\S) mixed with other characters in [...]")
                negate = negate or negated
                body.append(chars)
            else:
                self.refuse(f"the class item {op} {arg}")
        return "[" + ("^" if negate else "") + "".join(body) + "]"


def _repeat(low: int, high: int) -> str:
    if high is sre.MAXREPEAT or high == sre.MAXREPEAT:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def _char(code: int) -> str:
    """One character as GBNF writes it inside a string or a class."""
    char = chr(code)
    if char.isascii() and char.isalnum():
        return char
    if code < 0x80:
        return f"\\x{code:02X}"
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"
