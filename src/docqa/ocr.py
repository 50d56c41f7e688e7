"""OCR of images and of scanned PDF pages, with Tesseract (Debian's ``tesseract-ocr``).

The engine and its models come from packages (``tesseract-ocr`` and ``tesseract-ocr-eng``,
installed by scripts/install.sh and .ci/run), so nothing is downloaded. Images are
normalised with Pillow (every frame of a multi-page TIFF, any mode, webp included) to PNG
and handed to ``tesseract - stdout`` on stdin. ``--enable_ocr`` (on by default) turns it on
when the ``tesseract`` program is found; without it an image file is refused with a reason
and a scanned PDF page yields nothing, as before.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
TIMEOUT_S = 120.0
MIN_SIDE = 1000  # small images are scaled up: Tesseract reads text of ~30 px height best


class OcrError(RuntimeError):
    """The OCR program failed on an image (the message says why)."""


class TesseractOcr:
    """Text of images, by the ``tesseract`` program, one call per image (thread-safe)."""

    def __init__(self, binary: str, languages: str = "eng") -> None:
        self.binary = binary
        self.languages = languages

    @classmethod
    def find(cls, languages: str = "eng") -> TesseractOcr | None:
        """The engine when ``tesseract`` is installed, else None."""
        binary = shutil.which("tesseract")
        return cls(binary, languages) if binary else None

    def read_png(self, png: bytes) -> str:
        try:
            result = subprocess.run([self.binary, "-", "stdout", "-l", self.languages, "--psm", "3"],
                                    input=png, capture_output=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise OcrError(f"OCR took longer than {TIMEOUT_S:.0f} s") from exc
        if result.returncode != 0:
            raise OcrError("OCR failed: " + result.stderr.decode(errors="replace").strip()[-200:])
        return result.stdout.decode("utf-8", errors="replace")

    def frames(self, data: bytes) -> Iterator[str]:
        """The text of each frame (page) of an image file's bytes."""
        from PIL import Image, ImageSequence

        with Image.open(io.BytesIO(data)) as image:
            for frame in ImageSequence.Iterator(image):
                yield self.read_png(_png(frame))

    def image_text(self, data: bytes) -> str:
        """The text of one image (all its frames)."""
        return "\n".join(self.frames(data))


def _png(frame: object) -> bytes:
    from PIL import Image

    assert isinstance(frame, Image.Image)
    image = frame.convert("L")
    side = min(image.size)
    if 0 < side < MIN_SIDE:
        scale = min(4.0, MIN_SIDE / side)
        image = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def pdf_page_images(path: str | Path, page_index: int) -> list[bytes]:
    """The raw images drawn on one page of a PDF (what a scanner puts there)."""
    from pypdf import PdfReader

    page = PdfReader(str(path)).pages[page_index]
    return [image.data for image in page.images]
