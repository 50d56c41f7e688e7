"""Chunks the embedding model reads whole: a real ingestion into Chroma with the real model.

The window is all-MiniLM-L6-v2's (256 tokens, [CLS] and [SEP] included); every stored
chunk, read with its title/section header as the model reads it, must fit it.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from src.docqa.splitting import context_header, indexed_text
from src.docqa.store import ChromaStore
from tests.conftest import ROOT
from tests.docqa.fixtures import paged_pdf
from tests.docqa.plugin import make_service, service_in, shared_embedder


@pytest.fixture
def docs(tmp_path: Path):
    yield from service_in(tmp_path)


def long_markdown() -> str:
    """Headings, long paragraphs, one paragraph with no break at all, and a long unbroken token."""
    parts = ["# Harbour operations manual\n\n"]
    for n in range(1, 7):
        parts.append(f"## Section {n}: berth rules\n\n")
        parts.append(" ".join(f"Rule {n}.{i} says vessel class {i} moors at berth {n * 10 + i} "
                              f"with {i + 2} lines." for i in range(60)) + "\n\n")
    parts.append("## Identifiers\n\n" + "x" * 3000 + "\n\n" + "tokens_" * 400 + "\n")
    return "".join(parts)


def stored(docs) -> list:
    return docs.chunks("UserData", None)


def test_no_indexed_chunk_exceeds_the_embedding_window(docs, tmp_path: Path) -> None:
    embedder = shared_embedder()
    manual = tmp_path / "manual.md"
    manual.write_text(long_markdown())
    files = [(manual, "manual.md"), (ROOT / "README.md", "README.md"),
             (ROOT / "docs" / "document_qa.md", "document_qa.md")]
    report = docs.add_files("UserData", files, None, chunk_size=4096)  # asks for far more than fits
    assert report.failed == [] and report.chunks > 20
    hits = stored(docs)
    assert len(hits) == report.chunks
    read = [embedder.tokens_read(indexed_text(h.content, h.metadata)) for h in hits]
    assert max(read) <= embedder.window == 256, max(read)
    assert sum(r > 200 for r in read) > len(read) // 3  # chunks use the window, not a tiny slice
    # nothing was lost: every berth number of the manual is in some chunk
    text = " ".join(h.content for h in hits if h.metadata["source"] == "manual.md")
    for n in range(1, 7):
        for i in range(60):
            assert f"berth {n * 10 + i} " in text


def test_unchunked_pages_are_still_cut_at_the_window(docs, tmp_path: Path) -> None:
    manual = tmp_path / "manual.md"
    manual.write_text(long_markdown())
    docs.add_files("UserData", [(manual, "manual.md")], None, chunk=False)
    embedder = shared_embedder()
    assert max(embedder.tokens_read(indexed_text(h.content, h.metadata)) for h in stored(docs)) <= 256


def test_neighbouring_chunks_overlap_by_default(docs, tmp_path: Path) -> None:
    manual = tmp_path / "manual.md"
    manual.write_text(long_markdown())
    docs.add_files("UserData", [(manual, "manual.md")], None)
    section = [h for h in stored(docs) if h.metadata["section"] == "Section 1: berth rules"]
    assert len(section) >= 2
    shared = [set(a.content.split(". ")) & set(b.content.split(". ")) for a, b in zip(section, section[1:], strict=False)]
    assert all(shared), "consecutive chunks of one section share no sentence"


def test_chunks_carry_title_and_section_but_show_the_text_as_written(docs, tmp_path: Path) -> None:
    manual = tmp_path / "manual.md"
    manual.write_text(long_markdown())
    docs.add_files("UserData", [(manual, "manual.md")], None)
    hits = stored(docs)
    sections = {h.metadata["section"] for h in hits}
    assert {"Section 3: berth rules", "Identifiers"} <= sections
    assert {h.metadata["title"] for h in hits} == {"Harbour operations manual"}
    assert all(not h.content.startswith("Harbour operations manual >") for h in hits)
    # six sections of near-identical rules: the header is what tells section 3 apart
    hits = docs.retrieve("UserData", "Which berth does vessel class 7 of section 3 use?", 3, None)
    assert "Harbour operations manual > Section 3: berth rules\n" in [context_header(h.metadata) for h in hits]


def test_rst_and_asciidoc_headings_become_sections(docs, tmp_path: Path) -> None:
    page = tmp_path / "tool.txt"
    page.write_text("tool(1)\n=======\n\nNAME\n----\ntool - does things\n\nOPTIONS\n-------\n"
                    "--frobnicate::\n\tFrobnicate the widget.\n+\n------------\n$ tool --frobnicate\n"
                    "------------\n")
    docs.add_files("UserData", [(page, "tool.txt")], None)
    hits = stored(docs)
    assert {h.metadata["section"] for h in hits} == {"NAME", "OPTIONS"}
    assert {h.metadata["title"] for h in hits} == {"tool(1)"}


def outlined_pdf(pages: list[str], outline: list[tuple[str, int]]) -> bytes:
    """``paged_pdf`` with bookmarks: (title, 0-based page) entries, the first one with a child."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(paged_pdf(pages))))
    parent = None
    for n, (title, page) in enumerate(outline):
        item = writer.add_outline_item(title=title, page_number=page, parent=parent if n == 1 else None)
        parent = item if n == 0 else parent
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_outline_entries_become_the_sections_of_their_pages(docs, tmp_path: Path) -> None:
    pdf = tmp_path / "harbour.pdf"
    pdf.write_bytes(outlined_pdf(
        ["Boats arrive at dawn.", "Lines are doubled in a gale.", "Ambrose paints the tower blue.",
         "Keepers log the lamp hours."],
        [("Arrivals", 0), ("Storm rules", 1), ("Maintenance", 2)]))
    docs.add_files("UserData", [(pdf, "harbour.pdf")], None)
    by_page = {h.metadata["page"]: h for h in stored(docs)}
    assert {p: h.metadata["section"] for p, h in by_page.items()} == {
        1: "Arrivals", 2: "Storm rules", 3: "Maintenance", 4: "Maintenance"}  # a page without an entry
    assert by_page[3].content == "Ambrose paints the tower blue."  # the source shows the text as written
    hits = docs.retrieve("UserData", "Maintenance: what colour is the tower?", 1, None)
    assert indexed_text(hits[0].content, hits[0].metadata).startswith("harbour.pdf > Maintenance\n")


def test_an_oversized_database_is_reported_at_start_and_make_db_rebuilds_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from src.docqa.service import DocumentService
    from src.make_db import make_db
    from src.settings import build_settings

    embedder = shared_embedder()
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "manual.md").write_text(long_markdown())
    # a collection as main built it: 512-token chunks, half of each never embedded
    db_root = tmp_path / "db"
    store = ChromaStore(db_root / "db_dir_UserData", "UserData", embedder.name)
    words = long_markdown().split()
    old = [" ".join(words[i:i + 400]) for i in range(0, len(words), 400)]
    store.upsert([f"old-{i}" for i in range(len(old))], embedder.embed(old), old,
                 [{"origin": str(folder / "manual.md"), "source": str(folder / "manual.md"),
                   "chunk_id": i, "n_chunks": len(old), "hash": "0" * 64, "page": 0,
                   "ingested_at": "2026-01-01T00:00:00+00:00"} for i in range(len(old))])
    settings = build_settings({"db_root": str(db_root)})
    with caplog.at_level(logging.WARNING, logger="src.docqa.service"):
        service = DocumentService.from_settings(settings, embedder)
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "'UserData'" in warning and "exceed 256 tokens" in warning
    assert "make_db.py" in warning and "--rebuild" in warning
    assert service.chunks("UserData", None)[0].id == "old-0"  # nothing was re-embedded behind our back
    service.close()

    assert make_db(str(folder), "UserData", db_root=str(db_root), rebuild=True) == 0
    rebuilt = make_service(db_root)
    assert rebuilt.oversized() == []
    assert all(not h.id.startswith("old-") for h in rebuilt.chunks("UserData", None))
    rebuilt.close()
