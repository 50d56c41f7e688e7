"""guided_regex as GBNF for llama.cpp: what each construct becomes, and what is refused."""

from __future__ import annotations

import pytest

from src.engine.regex_gbnf import regex_to_gbnf
from src.errors import InvalidParamsError


@pytest.mark.parametrize(("pattern", "grammar"), [
    (r"[0-9]{3}-\d{4}", r'([0-9]){3} "\x2D" ([0-9]){4}'),
    (r"(yes|no)", r'(("y" "e" "s" | "n" "o"))'),
    (r"a+b*?c?", r'("a")+ ("b")* ("c")?'),  # lazy and greedy repeats match the same strings
    (r"x{2,}y{1,3}", r'("x"){2,} ("y"){1,3}'),
    (r"[^a-z\s]", r"[^a-z \t\n\r\x0B\x0C]"),
    (r"\W", r"[^a-zA-Z0-9_]"),
    (r"^\d+$", r"([0-9])+"),  # anchors at the ends: the whole answer matches anyway
    (r".x", r'[^\n] "x"'),
    (r"(?s).", r"[\U00000000-\U0010FFFF]"),
    ("é", r'"\u00E9"'),
    ("", '""'),
])
def test_each_construct_becomes_its_gbnf(pattern, grammar):
    assert regex_to_gbnf(pattern) == "root ::= " + grammar


@pytest.mark.parametrize(("pattern", "named"), [
    (r"(a)\1", "back reference"),
    (r"(?=a)a", "lookahead"),
    (r"a\bb", "word boundary"),
    (r"a^b", "anchor"),
    (r"(?i)yes", "case-insensitive"),
    (r"[\Da]", "negated class"),
    (r"[", "not a valid regular expression"),
])
def test_what_a_grammar_cannot_say_is_refused_by_name(pattern, named):
    with pytest.raises(InvalidParamsError, match=named) as refused:
        regex_to_gbnf(pattern)
    assert refused.value.param == "guided_regex"
