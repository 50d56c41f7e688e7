"""Responses input parts that name a /v1/files upload by ``file_id``, read into the turn.

Before the items become chat messages (responses_input.py), each ``input_image`` and
``input_file`` with a ``file_id`` is resolved against the requester's files (their API
key's folder: another key's id is a 404, as on GET /v1/files/{id}):

- an ``input_image`` becomes the image as a ``data:`` URI (PNG, JPEG, GIF or WebP, told
  by its bytes), which then goes to the model as an image part;
- an ``input_file`` becomes its text, as OpenAI reads a file into the context: a UTF-8
  text file as it is, a PDF as the text of its pages (pypdf; a scanned PDF without a text
  layer has none, and is refused). Other files belong in a collection (/v1/collections).

The stored items keep the ``file_id`` (not the bytes); a later response that continues the
conversation (``previous_response_id``) reads the file again, so a deleted file is a 404.
"""

from __future__ import annotations

import base64
import io
import logging
from typing import Any

from openai_server.errors import InvalidRequestError
from openai_server.protocol_responses import InputFile, InputImage, MessageItem
from openai_server.serving_documents import FileService

log = logging.getLogger(__name__)

_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def image_type(data: bytes) -> str | None:
    """The MIME type of an image by its first bytes, or None if it is none we read."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _IMAGE_MAGIC if data.startswith(magic)), None)


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        pages = [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise InvalidRequestError(f"the PDF cannot be read ({type(exc).__name__})", param="input",
                                  code="unsupported_input") from None
    return "\n\n".join(p.strip() for p in pages if p.strip())


def file_text(filename: str, data: bytes) -> str:
    """The text a file gives the model; a 400 for a file that has none."""
    if data.startswith(b"%PDF-"):
        text = pdf_text(data)
        if not text:
            raise InvalidRequestError(f"the PDF {filename!r} has no text layer (a scan); add it to a "
                                      "collection, where it is read by OCR (/v1/collections)",
                                      param="input", code="unsupported_input")
        return text
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError(f"input_file {filename!r} is neither UTF-8 text nor a PDF; add other "
                                  "documents to a collection (/v1/collections)", param="input",
                                  code="unsupported_input") from None


async def _part(part: Any, files: FileService, owner: str) -> Any:
    if isinstance(part, InputImage) and part.file_id and not part.image_url:
        _, data = await files.content(owner, part.file_id)
        mime = image_type(data)
        if mime is None:
            raise InvalidRequestError(f"the file {part.file_id!r} is not a PNG, JPEG, GIF or WebP image",
                                      param="input", code="unsupported_input")
        url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        return part.model_copy(update={"image_url": url, "file_id": None})
    if isinstance(part, InputFile) and part.file_id and not part.file_data:
        obj, data = await files.content(owner, part.file_id)
        name = part.filename or obj.filename
        text = file_text(name, data)
        encoded = base64.b64encode(text.encode()).decode()
        return part.model_copy(update={"file_data": f"data:text/plain;base64,{encoded}", "file_id": None,
                                       "filename": name})
    return part


async def resolve_file_ids(items: list[Any], files: FileService, owner: str) -> list[Any]:
    """``items`` with every file_id part of a message read from ``owner``'s files."""
    out = []
    for item in items:
        if isinstance(item, MessageItem) and isinstance(item.content, list) and any(
                getattr(p, "file_id", None) for p in item.content):
            content = [await _part(p, files, owner) for p in item.content]
            item = item.model_copy(update={"content": content})
        out.append(item)
    return out
