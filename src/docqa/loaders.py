"""File loaders: one LangChain document loader per extension.

LangChain community's own loaders are used where they need only light dependencies
(pdf via pypdf, text, html via BeautifulSoup, csv, json via jq, docx via docx2txt).
Its pptx, xlsx, epub and eml loaders all go through ``unstructured`` (hundreds of MB of
dependencies, pandoc for epub), so those four are small :class:`BaseLoader` subclasses
over the format's own library (python-pptx, openpyxl, ebooklib, the stdlib ``email``).
No format is parsed by hand here.
"""

from __future__ import annotations

import email
import email.policy
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from src.docqa.ocr import IMAGE_EXTENSIONS, OcrError, TesseractOcr, pdf_page_images

with warnings.catch_warnings():  # "langchain-community is being sunset" on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.document_loaders import (
        BSHTMLLoader,
        CSVLoader,
        Docx2txtLoader,
        JSONLoader,
        PyPDFLoader,
        TextLoader,
    )


log = logging.getLogger(__name__)


class LoadError(ValueError):
    """A file could not be turned into documents; the message says why (no internals)."""


CODE_EXTENSIONS = frozenset(
    ".py .js .ts .tsx .jsx .java .c .h .cc .cpp .hpp .cs .go .rs .rb .php .swift .kt .scala "
    ".sh .bash .sql .r .m .lua .pl .yaml .yml .toml .ini .cfg .xml .css .ipynb .tex .log".split()
)
TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".rst", ".text"}) | CODE_EXTENSIONS
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


def _html(path: str) -> BaseLoader:
    return BSHTMLLoader(path, open_encoding="utf-8", bs_kwargs={"features": "html.parser"},
                        get_text_separator="\n")


def _json(path: str) -> BaseLoader:
    return JSONLoader(path, jq_schema=".", text_content=False)


def _jsonl(path: str) -> BaseLoader:
    return JSONLoader(path, jq_schema=".", text_content=False, json_lines=True)


def _text(path: str) -> BaseLoader:
    return TextLoader(path, encoding="utf-8", autodetect_encoding=True)


def _csv(path: str) -> BaseLoader:
    return CSVLoader(path, encoding="utf-8", autodetect_encoding=True)


class PptxLoader(BaseLoader):
    """One document per slide (``page`` is the 1-based slide number), via python-pptx."""

    def __init__(self, path: str) -> None:
        self.path = path

    def lazy_load(self) -> Iterator[Document]:
        from pptx import Presentation

        for number, slide in enumerate(Presentation(self.path).slides, start=1):
            texts = [
                shape.text_frame.text
                for shape in slide.shapes
                if shape.has_text_frame and shape.text_frame.text.strip()
            ]
            if texts:
                yield Document("\n".join(texts), metadata={"source": self.path, "page": number})


class XlsxLoader(BaseLoader):
    """One document per worksheet, rows as tab-separated lines, via openpyxl (read-only)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def lazy_load(self) -> Iterator[Document]:
        from openpyxl import load_workbook

        book = load_workbook(self.path, read_only=True, data_only=True)
        try:
            for number, sheet in enumerate(book.worksheets, start=1):
                rows = [
                    "\t".join("" if value is None else str(value) for value in row)
                    for row in sheet.iter_rows(values_only=True)
                ]
                text = "\n".join(row for row in rows if row.strip())
                if text:
                    yield Document(f"{sheet.title}\n{text}",
                                   metadata={"source": self.path, "page": number})
        finally:
            book.close()


class EpubLoader(BaseLoader):
    """One document per chapter of the reading order, via ebooklib and BeautifulSoup."""

    def __init__(self, path: str) -> None:
        self.path = path

    def lazy_load(self) -> Iterator[Document]:
        import ebooklib
        from bs4 import BeautifulSoup
        from ebooklib import epub

        book = epub.read_epub(self.path, options={"ignore_ncx": True})
        number = 0
        for item in book.get_items_of_type(ebooklib.ITEM_DOCUMENT):
            text = BeautifulSoup(item.get_content(), "html.parser").get_text("\n").strip()
            if text:
                number += 1
                yield Document(text, metadata={"source": self.path, "page": number})


class EmailLoader(BaseLoader):
    """An .eml message: headers and the plain-text (else HTML-as-text) body, via stdlib email."""

    def __init__(self, path: str) -> None:
        self.path = path

    def lazy_load(self) -> Iterator[Document]:
        from bs4 import BeautifulSoup

        with open(self.path, "rb") as handle:
            message: Any = email.message_from_binary_file(handle, policy=email.policy.default)
        body_part = message.get_body(preferencelist=("plain", "html"))
        body = body_part.get_content() if body_part is not None else ""
        if body_part is not None and body_part.get_content_subtype() == "html":
            body = BeautifulSoup(body, "html.parser").get_text("\n")
        headers = "\n".join(
            f"{name}: {message[name]}" for name in ("From", "To", "Date", "Subject") if message[name]
        )
        yield Document(f"{headers}\n\n{body}".strip(), metadata={"source": self.path})


AUDIO_EXTENSIONS = frozenset({".wav", ".mp3", ".m4a", ".ogg", ".oga", ".opus", ".webm", ".flac"})
AUDIO_GROUP_SECONDS = 20.0
Transcriber = Callable[[bytes, str], dict[str, Any]]
_transcriber: list[Transcriber] = []


def use_transcriber(transcribe: Transcriber | None) -> None:
    """Let ingestion transcribe audio files with ``transcribe(data, name) -> {segments}``
    (the engine's speech-to-text service, src/media.py); None: audio files are refused."""
    _transcriber[:] = [transcribe] if transcribe else []


_ocr: list[TesseractOcr] = []


def use_ocr(engine: TesseractOcr | None) -> None:
    """Let ingestion read images and scanned PDF pages with ``engine`` (``--enable_ocr``);
    None: image files are refused and scanned pages yield no text."""
    _ocr[:] = [engine] if engine else []


class ImageLoader(BaseLoader):
    """An image file read by OCR: one document per frame (``page`` 1-based for a multi-page TIFF)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def lazy_load(self) -> Iterator[Document]:
        if not _ocr:
            raise LoadError("image files need OCR, which is off (--enable_ocr, and the tesseract-ocr "
                            "package)")
        try:
            texts = list(_ocr[0].frames(Path(self.path).read_bytes()))
        except OcrError as exc:
            raise LoadError(str(exc)) from exc
        for number, text in enumerate(texts, start=1):
            yield Document(text, metadata={"page": number if len(texts) > 1 else 0})


def _ocr_scanned_pages(path: str | Path, documents: list[Document]) -> None:
    """Give the pages of a PDF that have no text layer the OCR text of their images."""
    if not _ocr:
        return
    for document in documents:
        page = document.metadata.get("page")
        if document.page_content.strip() or not isinstance(page, int):
            continue
        texts = []
        for data in pdf_page_images(path, page):
            try:
                texts.append(_ocr[0].image_text(data))
            except (OcrError, OSError, ValueError) as exc:  # a damaged image loses that image only
                log.warning("OCR of an image on page %d of %s failed: %s", page + 1, path, exc)
        document.page_content = "\n".join(texts)


class AudioLoader(BaseLoader):
    """Audio transcribed by the speech-to-text service: one document per ~20 s of speech,
    with ``start`` and ``end`` (seconds) of the span it covers."""

    def __init__(self, path: str) -> None:
        self.path = path

    def lazy_load(self) -> Iterator[Document]:
        if not _transcriber:
            raise LoadError("audio files need speech to text, which is off (--enable_stt)")
        result = _transcriber[0](Path(self.path).read_bytes(), Path(self.path).name)
        group: list[dict[str, Any]] = []
        for segment in [*result["segments"], None]:
            if group and (segment is None or segment["end"] - group[0]["start"] > AUDIO_GROUP_SECONDS):
                text = " ".join(s["text"].strip() for s in group)
                yield Document(text, metadata={"page": 0, "start": float(group[0]["start"]),
                                                "end": float(group[-1]["end"])})
                group = []
            if segment is not None:
                group.append(segment)


LOADERS: dict[str, Callable[[str], BaseLoader]] = {
    ".pdf": PyPDFLoader,
    ".html": _html,
    ".htm": _html,
    ".csv": _csv,
    ".json": _json,
    ".jsonl": _jsonl,
    ".docx": Docx2txtLoader,
    ".pptx": PptxLoader,
    ".xlsx": XlsxLoader,
    ".epub": EpubLoader,
    ".eml": EmailLoader,
    **{ext: _text for ext in TEXT_EXTENSIONS},
    **{ext: AudioLoader for ext in AUDIO_EXTENSIONS},
    **{ext: ImageLoader for ext in IMAGE_EXTENSIONS},
}


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def is_supported(name: str) -> bool:
    """True when ``name``'s extension has a loader or names an archive."""
    return is_archive(name) or Path(name).suffix.lower() in LOADERS


def load_file(path: str | Path, name: str | None = None) -> list[Document]:
    """Load one (non-archive) file into documents, each with ``page`` (0 when not paged)
    and, for audio, ``start`` and ``end`` in seconds.

    ``name`` is the name to pick the loader by (an upload's original name); it defaults to
    the path. Raises :class:`LoadError` for an unsupported extension or a file the loader
    cannot read.
    """
    suffix = Path(name or str(path)).suffix.lower()
    factory = LOADERS.get(suffix)
    if factory is None:
        raise LoadError(f"unsupported file type {suffix or '(no extension)'!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            documents = factory(str(path)).load()
    except LoadError:
        raise
    except Exception as exc:  # each library raises its own types for a corrupt file
        raise LoadError(f"cannot read {suffix} file: {type(exc).__name__}: {exc}"[:300]) from exc
    if suffix == ".pdf":
        _ocr_scanned_pages(path, documents)
    outline = pdf_outline(path) if suffix == ".pdf" else {}
    for document in documents:
        page = document.metadata.get("page")
        if suffix == ".pdf" and isinstance(page, int):
            page += 1  # pypdf counts pages from 0; people count from 1
        span = {k: float(document.metadata[k]) for k in ("start", "end") if k in document.metadata}
        title = document.metadata.get("title")
        meta: dict[str, Any] = {"page": page if isinstance(page, int) else 0, **span}
        if isinstance(title, str) and title.strip():
            meta["title"] = " ".join(title.split())[:200]
        if outline and isinstance(page, int):
            heading = _section_at(outline, page)
            if heading:
                meta["section"] = heading
        document.metadata = meta
    return [d for d in documents if d.page_content.strip()]


def pdf_outline(path: str | Path) -> dict[int, str]:
    """The PDF's outline (bookmarks) as {1-based page: heading of the entry starting there}."""
    from pypdf import PdfReader

    found: dict[int, str] = {}
    try:
        reader = PdfReader(str(path))
        stack: list[Any] = list(reversed(list(reader.outline)))
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(reversed(item))
                continue
            number = reader.get_destination_page_number(item)
            if number is not None and number >= 0:
                found.setdefault(number + 1, " ".join(str(item.title).split())[:200])
    except Exception:  # a damaged outline only loses the section names, never the text
        return {}
    return found


def _section_at(outline: dict[int, str], page: int) -> str:
    """The heading of the last outline entry that starts at or before ``page``."""
    starts = [p for p in outline if p <= page]
    return outline[max(starts)] if starts else ""
