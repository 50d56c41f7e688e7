"""Turn a growing list of token ids into text deltas, cutting at stop strings.

Text is decoded from all generated ids each step (a fast tokenizer does this in
microseconds), so multi-byte characters split across tokens come out whole. Text that
could be the start of a stop string is held back until it is known not to be one, so
a stop string never reaches the caller.
"""

from __future__ import annotations

from typing import Any


class TextStream:
    """Incremental detokenizer with stop-string handling."""

    def __init__(self, tokenizer: Any, stop: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.ids: list[int] = []
        self.emitted = 0  # characters of the decoded text already handed out
        self.stopped = False
        self.matched: str | None = None  # the stop string the text ended at
        self._text = ""

    def add(self, token_ids: list[int]) -> str:
        """Add new tokens; return the text that is now safe to emit."""
        if self.stopped:
            return ""
        self.ids.extend(token_ids)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""  # an unfinished multi-byte character
        self._text = text
        if self.stop:
            cut = self._find_stop(text)
            if cut is not None:
                self.stopped = True
                return self._emit_until(cut)
            return self._emit_until(len(text) - self._partial_stop_len(text))
        return self._emit_until(len(text))

    def flush(self) -> str:
        """Emit whatever was held back (generation ended without a stop string)."""
        if self.stopped:
            return ""
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        self._text = text
        return self._emit_until(len(text))

    def _emit_until(self, end: int) -> str:
        if end <= self.emitted:
            return ""
        delta = self._text[self.emitted : end]
        self.emitted = end
        return delta

    def _find_stop(self, text: str) -> int | None:
        start = max(0, self.emitted - max(len(s) for s in self.stop))
        hits = [(i, s) for i, s in ((text.find(s, start), s) for s in self.stop) if i >= 0]
        if not hits:
            return None
        cut, self.matched = min(hits, key=lambda hit: hit[0])
        return cut

    def _partial_stop_len(self, text: str) -> int:
        """Length of the longest text suffix that is a proper prefix of a stop string."""
        best = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:k]):
                    best = k
                    break
        return best


class StopScanner:
    """Stop strings over text deltas (an engine that is not told them, so that the string
    that matched is known): :meth:`feed` returns the text that is safe to emit, holding back
    what could be the start of a stop string; after a match, ``matched`` is the string and
    the rest of the answer is dropped."""

    def __init__(self, stop: tuple[str, ...]) -> None:
        self.stop = tuple(s for s in stop if s)
        self.matched: str | None = None
        self._held = ""

    def feed(self, delta: str) -> str:
        if self.matched is not None:
            return ""
        text = self._held + delta
        hits = [(i, s) for i, s in ((text.find(s), s) for s in self.stop) if i >= 0]
        if hits:
            cut, self.matched = min(hits, key=lambda hit: hit[0])
            self._held = ""
            return text[:cut]
        keep = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(text)), keep, -1):
                if text.endswith(s[:k]):
                    keep = k
                    break
        self._held = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep]

    def flush(self) -> str:
        """What was held back (the answer ended without a stop string)."""
        held, self._held = self._held, ""
        return "" if self.matched is not None else held
