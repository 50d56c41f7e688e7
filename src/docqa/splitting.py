"""Chunking that the embedding model reads whole, with each chunk's title and section.

A chunk is embedded (and indexed lexically) as its *context header* -- the file's title
and the section heading it sits under -- followed by the chunk as written; sources show
the chunk as written. The embedding model reads at most ``window`` tokens of one input,
special tokens included (256 for all-MiniLM-L6-v2) and silently drops the rest, so every
chunk is cut to ``min(chunk_size, window - special tokens - header tokens)`` tokens of the
model's own tokenizer, with ``chunk_overlap`` tokens shared between neighbours. A chunk the
recursive splitter still leaves too long (token counts are not additive) is cut again at
token boundaries, so the bound always holds.

Sections come from the headings of Markdown (``#``), reStructuredText and AsciiDoc
(a line underlined with ``=``, ``-``, ``~``, ...; AsciiDoc's ``== Title``) and plain text
written that way; a PDF page takes the outline entry it falls under (see
:func:`src.docqa.loaders.pdf_outline`). The title is the document's own (HTML ``<title>``,
PDF metadata), else its first top-level heading, else the file name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

DEFAULT_CHUNK_SIZE = 512
DEFAULT_CHUNK_OVERLAP = 32
MIN_CHUNK_TOKENS = 16
SECTIONED_SUFFIXES = frozenset({".md", ".markdown", ".rst", ".txt", ".text", ".adoc", ".asciidoc"})
_ATX = re.compile(r"^(#{1,6})[ \t]+(\S.*?)[ \t#]*$")
_ADOC = re.compile(r"^(={1,6})[ \t]+(\S.*?)[ \t]*$")
_UNDERLINE = re.compile(r"^([=\-~^+*#\"'`:._])\1{2,}[ \t]*$")
_SETEXT_LEVEL = {"=": 1, "-": 2, "~": 3, "^": 4, "+": 5}


@dataclass(frozen=True)
class Window:
    """What the embedding model reads of one input: ``size`` tokens, ``special`` of them its own."""

    size: int
    special: int
    count_tokens: Callable[[str], int]
    offsets: Callable[[str], list[tuple[int, int]]]

    def budget(self, header: str, chunk_size: int) -> int:
        """Tokens left for a chunk's own text after the header and the special tokens."""
        room = self.size - self.special - (self.count_tokens(header) if header else 0)
        return max(MIN_CHUNK_TOKENS, min(chunk_size, room))

    def fits(self, text: str) -> bool:
        return self.count_tokens(text) + self.special <= self.size


def context_header(metadata: dict[str, object]) -> str:
    """``title > section`` and a newline (empty when the chunk has neither)."""
    title = str(metadata.get("title") or "").strip()
    section = str(metadata.get("section") or "").strip()
    parts = [p for p in (title, section) if p]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return (" > ".join(parts) + "\n") if parts else ""


def indexed_text(content: str, metadata: dict[str, object]) -> str:
    """What the embedding model and the lexical index read for a chunk: header + chunk."""
    return context_header(metadata) + content


def _heading(lines: list[str], i: int, markdown: bool) -> tuple[int, str, int] | None:
    """(level, title, lines used) when a heading starts at line ``i``."""
    line = lines[i].rstrip()
    match = _ATX.match(line) if markdown else _ADOC.match(line)
    if match:
        return len(match.group(1)), match.group(2).strip(), 1
    nxt = lines[i + 1].rstrip() if i + 1 < len(lines) else ""
    title = line.strip()
    under = len(nxt.strip())
    if (title and not line[:1].isspace() and any(c.isalnum() for c in title) and _UNDERLINE.match(nxt)
            and len(title) <= 120 and len(title) - 2 <= under <= 2 * len(title) + 4):
        return _SETEXT_LEVEL.get(nxt.strip()[0], 3), title, 2
    return None


def sections(document: Document, name: str) -> list[Document]:
    """``document`` cut at its headings; each part's metadata has ``section`` (and ``title``).
    A heading line goes into the header of its section's chunks rather than into the first one.

    Files of other kinds (code, data, PDF pages) are returned as they are."""
    suffix = PurePath(name).suffix.lower()
    if suffix not in SECTIONED_SUFFIXES:
        return [document]
    markdown = suffix in (".md", ".markdown")
    lines = document.page_content.splitlines(keepends=True)
    parts: list[tuple[str, list[str]]] = [("", [])]
    title = str(document.metadata.get("title") or "")
    i = 0
    while i < len(lines):
        found = _heading(lines, i, markdown)
        if found is None:
            parts[-1][1].append(lines[i])
            i += 1
            continue
        level, heading, used = found
        if not title and level == 1:
            title = heading
        parts.append((heading, []))  # the heading itself is in every chunk's header
        i += used
    out = []
    for heading, body in parts:
        text = "".join(body)
        if text.strip():
            meta = {**document.metadata, "section": heading}
            if title:
                meta["title"] = title
            out.append(Document(text, metadata=meta))
    return out


def make_splitter(count_tokens: Callable[[str], int], chunk_size: int = DEFAULT_CHUNK_SIZE,
                  chunk_overlap: int = DEFAULT_CHUNK_OVERLAP) -> RecursiveCharacterTextSplitter:
    """A splitter of one section. Its token counts are cached while it lives: the recursive
    splitter measures every piece of a section, words included, about 2.5 times over (259,170
    tokenizer calls for 512 chunks in bench/docqa.py, 11 % of an ingestion), and a section
    repeats its words."""
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=min(chunk_overlap, chunk_size // 4),
        length_function=functools.cache(count_tokens),
        separators=["\n\n", "\n", ". ", " ", ""],
        keep_separator="end",
    )


def _cut(text: str, header: str, window: Window, budget: int) -> list[str]:
    """``text`` in pieces of at most ``budget`` tokens, cut at token boundaries."""
    pieces: list[str] = []
    spans = window.offsets(text)
    start = 0
    while start < len(spans):
        end = min(start + budget, len(spans))
        while True:
            piece = text[spans[start][0]:spans[end - 1][1]]
            if end - start <= 1 or window.fits(header + piece):
                break
            end -= max(1, (end - start) // 8)
        pieces.append(piece)
        start = end
    return pieces


def split_documents(
    documents: list[Document],
    window: Window,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
    chunk: bool = True,
    name: str = "",
) -> list[Document]:
    """Chunks of ``documents`` (metadata kept, plus ``title`` and ``section``), each of which
    the embedding model reads whole with its header.

    ``chunk=False`` keeps each section (page) whole when it fits the window, as h2oGPT's
    ``chunk`` flag does, and cuts it at the window when it does not."""
    out: list[Document] = []
    fallback_title = PurePath(name).name if name else ""
    for document in documents:
        for part in sections(document, name):
            part.metadata.setdefault("title", document.metadata.get("title") or fallback_title)
            part.metadata.setdefault("section", "")
            header = context_header(part.metadata)
            budget = window.budget(header, chunk_size if chunk else window.size)
            if not chunk and window.fits(header + part.page_content):
                pieces = [part]
            else:
                pieces = make_splitter(window.count_tokens, budget, chunk_overlap).split_documents([part])
            for piece in pieces:
                if not piece.page_content.strip():
                    continue
                if window.fits(header + piece.page_content):
                    out.append(piece)
                    continue
                out.extend(Document(text, metadata=dict(piece.metadata))
                           for text in _cut(piece.page_content, header, window, budget) if text.strip())
    return out
