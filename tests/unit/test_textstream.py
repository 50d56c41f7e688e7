"""Incremental detokenization with stop strings, on the real model's tokenizer."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from src.engine.convert import cached_copy
from src.engine.model_source import resolve_model
from src.engine.textstream import StopScanner, TextStream


@pytest.fixture(scope="module")
def tokenizer(evaluator):
    source = resolve_model(evaluator.settings.base_model)
    path = cached_copy(source, evaluator.settings.model_cache_dir)
    return AutoTokenizer.from_pretrained(path)


def _feed(stream: TextStream, ids: list[int]) -> str:
    return "".join(stream.add([i]) for i in ids) + stream.flush()


def test_deltas_join_to_the_decoded_text(tokenizer):
    text = "Héllo wörld — naïve café 🙂 done."
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert _feed(TextStream(tokenizer), ids) == tokenizer.decode(ids)


def test_stop_string_is_cut_and_never_emitted(tokenizer):
    ids = tokenizer.encode("one two three four five", add_special_tokens=False)
    stream = TextStream(tokenizer, ("three",))
    out = _feed(stream, ids)
    assert out == "one two " and stream.stopped


def test_partial_stop_prefix_is_held_then_released(tokenizer):
    ids = tokenizer.encode("alpha beta gamma", add_special_tokens=False)
    stream = TextStream(tokenizer, ("beta zzz",))
    assert _feed(stream, ids) == "alpha beta gamma" and not stream.stopped


def test_earliest_of_several_stops_wins(tokenizer):
    ids = tokenizer.encode("a b c d e", add_special_tokens=False)
    assert _feed(TextStream(tokenizer, ("d", " b")), ids) == "a"


def test_the_matched_stop_string_is_named(tokenizer):
    ids = tokenizer.encode("a b c d e", add_special_tokens=False)
    stream = TextStream(tokenizer, ("zz", "d", " b c"))
    assert _feed(stream, ids) == "a" and stream.matched == " b c"
    unmatched = TextStream(tokenizer, ("zz",))
    assert _feed(unmatched, ids) == "a b c d e" and unmatched.matched is None


def test_stop_scanner_cuts_text_deltas_and_names_the_match():
    scanner = StopScanner(("END", "xyz"))
    pieces = [scanner.feed(d) for d in ["Hello E", "N", "D tail", " more"]]
    assert pieces == ["Hello ", "", "", ""] and scanner.matched == "END" and scanner.flush() == ""
    held = StopScanner(("END",))
    assert held.feed("say EN") == "say " and held.feed("ough") == "ENough" and held.matched is None
    assert held.feed(" E") == " " and held.flush() == "E"
