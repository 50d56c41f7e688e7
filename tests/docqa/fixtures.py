"""Small real documents of every supported type, written into a folder for the tests.

Each file states one fact about a distinct topic, so retrieval tests can tell them apart.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from email.message import EmailMessage
from pathlib import Path

FACTS = {
    "pdf": "The lighthouse keeper Ambrose paints the tower blue every April.",
    "docx": "The bakery on Quince Street sells rye bread only on Tuesdays.",
    "pptx": "The robotics team named their rover Pebble after a lost cat.",
    "xlsx": "Warehouse seven stores exactly 4200 crates of oranges.",
    "epub": "The dragon Ignatius guards a library of forgotten recipes.",
    "eml": "The board meeting about the solar farm moved to Friday at noon.",
    "html": "Penguins in the Antarctic huddle together to survive blizzards.",
    "csv": "Saturn has a ring system made mostly of ice particles.",
    "json": "The violin was crafted in Cremona in 1716 by a master luthier.",
    "jsonl": "Marathon runners refuel with bananas at kilometre thirty.",
    "md": "The volcano Kilauea has erupted almost continuously since 1983.",
    "rst": "Honeybees communicate the location of flowers by dancing.",
    "py": "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n",
    "txt": "The Zanzibar project deadline is March 3rd and its budget is 40,000 euros.",
}


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in Helvetica, with a correct cross-reference table."""
    return paged_pdf([text])


def paged_pdf(pages: list[str]) -> bytes:
    """A PDF with one text line per page (Helvetica), with a correct cross-reference table."""
    n = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode()]
    font = 3 + 2 * n
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def minimal_docx(text: str) -> bytes:
    """A Word document with one paragraph (the three parts Word itself requires)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                   'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
                   'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
                   'officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels",
                   '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
                   '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
                   '</Relationships>')
        z.writestr("word/document.xml",
                   '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                   f'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p>'
                   '</w:body></w:document>')
    return out.getvalue()


def write_pptx(path: Path, text: str) -> None:
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Robotics"
    slide.placeholders[1].text = text
    deck.save(str(path))


def write_xlsx(path: Path, text: str) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Inventory"
    sheet.append(["note", "count"])
    sheet.append([text, 4200])
    book.save(str(path))


def write_epub(path: Path, text: str) -> None:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("test-book")
    book.set_title("Dragons")
    book.set_language("en")
    chapter = epub.EpubHtml(title="One", file_name="one.xhtml", lang="en")
    chapter.content = f"<html><body><h1>Chapter one</h1><p>{text}</p></body></html>"
    book.add_item(chapter)
    book.toc = [chapter]
    book.spine = ["nav", chapter]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    epub.write_epub(str(path), book)


def write_eml(path: Path, text: str) -> None:
    message = EmailMessage()
    message["From"] = "alice@example.com"
    message["To"] = "bob@example.com"
    message["Subject"] = "Solar farm"
    message.set_content(text)
    path.write_bytes(bytes(message))


def write_all(folder: Path) -> dict[str, Path]:
    """One file per supported type in ``folder``; returns {extension: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {ext: folder / f"sample.{ext}" for ext in FACTS}
    paths["pdf"].write_bytes(minimal_pdf(FACTS["pdf"]))
    paths["docx"].write_bytes(minimal_docx(FACTS["docx"]))
    write_pptx(paths["pptx"], FACTS["pptx"])
    write_xlsx(paths["xlsx"], FACTS["xlsx"])
    write_epub(paths["epub"], FACTS["epub"])
    write_eml(paths["eml"], FACTS["eml"])
    paths["html"].write_text(f"<html><head><title>Birds</title></head><body><p>{FACTS['html']}</p></body></html>")
    paths["csv"].write_text(f"planet,fact\nSaturn,{FACTS['csv']!r}\n".replace("'", '"'))
    paths["json"].write_text(f'{{"instrument": "violin", "story": "{FACTS["json"]}"}}')
    paths["jsonl"].write_text(f'{{"n": 1, "tip": "{FACTS["jsonl"]}"}}\n{{"n": 2, "tip": "hydrate"}}\n')
    paths["md"].write_text(f"# Volcanoes\n\n{FACTS['md']}\n")
    paths["rst"].write_text(f"Bees\n====\n\n{FACTS['rst']}\n")
    paths["py"].write_text(FACTS["py"])
    paths["txt"].write_text(FACTS["txt"])
    return paths


def write_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path


def write_targz(path: Path, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def text_image(text: str, fmt: str = "PNG", width: int = 1400) -> bytes:
    """``text`` drawn black on white (Pillow's bundled font at 40 px), as a scanner would give it."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=40)
    words, lines, line = text.split(), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if font.getlength(trial) > width - 120 and line:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    image = Image.new("RGB", (width, 120 + 60 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, row in enumerate(lines):
        draw.text((60, 60 + 60 * i), row, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def scanned_pdf(text_page: str, scanned_page: str) -> bytes:
    """A two-page PDF: page 1 with a text layer, page 2 only an image of text (no text layer)."""
    from PIL import Image
    from pypdf import PdfReader, PdfWriter

    scan = io.BytesIO()
    Image.open(io.BytesIO(text_image(scanned_page))).save(scan, format="PDF", resolution=150)
    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(minimal_pdf(text_page))).pages[0])
    writer.add_page(PdfReader(io.BytesIO(scan.getvalue())).pages[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
