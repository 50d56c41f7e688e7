"""OCR with the real Tesseract (Debian's tesseract-ocr): image files and scanned PDF pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.docqa.loaders import LoadError, load_file, use_ocr
from src.docqa.ocr import TesseractOcr
from tests.docqa.fixtures import scanned_pdf, text_image
from tests.docqa.plugin import service_in

SCANNED = "The lighthouse of Varnholm was repainted in 1987 by the keeper Ambrose Quill."
TYPED = "The ferry timetable for Skellig harbour lists a departure at seven fifteen."
IMAGE = "Invoice 4417 from Orchard Supplies is due on the twelfth of May."


@pytest.fixture
def ocr():
    engine = TesseractOcr.find()
    assert engine is not None, "tesseract is not installed (apt-get install tesseract-ocr)"
    use_ocr(engine)
    yield engine
    use_ocr(None)


@pytest.fixture
def docs(tmp_path: Path):
    yield from service_in(tmp_path)


@pytest.mark.parametrize("fmt, ext", [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("TIFF", "tiff")])
def test_image_files_are_read_by_ocr(ocr, tmp_path: Path, fmt: str, ext: str) -> None:
    path = tmp_path / f"invoice.{ext}"
    path.write_bytes(text_image(IMAGE, fmt))
    text = " ".join(d.page_content for d in load_file(path))
    for word in ("Invoice", "4417", "Orchard", "Supplies", "twelfth", "May"):
        assert word in text, (word, text)


def test_a_pdf_with_text_and_scanned_pages_gets_both_with_page_numbers(ocr, tmp_path: Path) -> None:
    path = tmp_path / "mixed.pdf"
    path.write_bytes(scanned_pdf(TYPED, SCANNED))
    pages = {d.metadata["page"]: d.page_content for d in load_file(path)}
    assert set(pages) == {1, 2}
    assert "Skellig" in pages[1] and "1987" in pages[2] and "Varnholm" in pages[2]


def test_scanned_page_and_image_are_retrieved_with_page_and_source(ocr, docs, tmp_path: Path) -> None:
    pdf, png = tmp_path / "mixed.pdf", tmp_path / "invoice.png"
    pdf.write_bytes(scanned_pdf(TYPED, SCANNED))
    png.write_bytes(text_image(IMAGE))
    report = docs.add_files("UserData", [(pdf, "mixed.pdf"), (png, "invoice.png")], None)
    assert report.failed == [] and report.count("added") == 2
    hit = docs.retrieve("UserData", "When was the Varnholm lighthouse repainted?", 1, None)[0]
    assert (hit.metadata["source"], hit.metadata["page"]) == ("mixed.pdf", 2) and "1987" in hit.content
    hit = docs.retrieve("UserData", "When is invoice 4417 due?", 1, None)[0]
    assert hit.metadata["source"] == "invoice.png" and "4417" in hit.content


def test_without_ocr_an_image_is_refused_with_the_reason(tmp_path: Path) -> None:
    use_ocr(None)
    path = tmp_path / "invoice.png"
    path.write_bytes(text_image(IMAGE))
    with pytest.raises(LoadError, match="--enable_ocr"):
        load_file(path)
