"""Images given with a chat message: data: URIs always, http(s) URLs only when allowed.

The product is offline by default, so a URL is fetched only with
``--allow_image_url_fetch``; otherwise it is refused with a message naming the flag.
:func:`image_bytes` turns a reference into bytes (the engine does this before queueing a
request, so a bad image is a 400 and never a failed generation); :func:`decode_image`
opens bytes as an RGB PIL image for a vision backend's processor.
"""

from __future__ import annotations

import base64
import binascii
import io
import urllib.error
import urllib.request
from typing import Any

from src.errors import InvalidParamsError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT_S = 10.0
FETCH_FLAG = "--allow_image_url_fetch"


def image_bytes(reference: str, allow_fetch: bool = False) -> bytes:
    """The bytes of an image given as a data: URI or (with ``allow_fetch``) an http(s) URL."""
    ref = reference.strip()
    if ref.startswith("data:"):
        return _data_uri_bytes(ref)
    if ref.startswith(("http://", "https://")):
        if not allow_fetch:
            raise InvalidParamsError(
                f"image URLs are not fetched on this server (it is offline by default); send the "
                f"image as a data: URI, or start the server with {FETCH_FLAG}=True",
                param="images",
            )
        return _fetch(ref)
    raise InvalidParamsError(
        "an image must be a data: URI (data:image/png;base64,...) or an http(s) URL",
        param="images",
    )


def _data_uri_bytes(uri: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidParamsError("an image data: URI must be base64 encoded "
                                 "(data:image/png;base64,...)", param="images")
    if len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise InvalidParamsError(f"an image is larger than {MAX_IMAGE_BYTES} bytes", param="images")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParamsError("an image data: URI holds invalid base64", param="images") from None


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "h2ogpt"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310
            data: bytes = response.read(MAX_IMAGE_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise InvalidParamsError(f"the image URL could not be fetched ({reason})", param="images") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidParamsError(f"an image is larger than {MAX_IMAGE_BYTES} bytes", param="images")
    return data


def decode_image(data: bytes) -> Any:
    """``data`` as an RGB PIL image; bytes that are not an image are the caller's fault."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidParamsError("an image could not be read (not a PNG, JPEG, GIF, WebP, ... "
                                 "file)", param="images") from None
    return image.convert("RGB")


def image_part(data: bytes) -> dict[str, Any]:
    """A message content part carrying an image (the backend decodes it)."""
    return {"type": "image", "image": data}


def message_images(message: Any) -> list[bytes]:
    """The image bytes of one message's content parts, in order."""
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [part["image"] for part in content if isinstance(part, dict) and part.get("type") == "image"]
