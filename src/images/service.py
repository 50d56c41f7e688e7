"""Image generation: diffusers pipelines loaded from local directories, on their own worker.

No image model is bundled: ``--visible_image_models`` names local diffusers pipeline
directories (with a ``model_index.json``), each called by its folder name. Pipelines load
on first use, on the service's worker thread, never on the LLM's generation thread.
``generate`` returns PNG bytes.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from pathlib import Path
from typing import Any

from src.audio.worker import Worker
from src.contract.media import ImagesRequest
from src.errors import ImageGenerationOffError, InvalidParamsError, UnknownModelError

log = logging.getLogger(__name__)

MAX_IMAGES = 10
MAX_SIDE = 2048
_SIZE = re.compile(r"^(\d+)x(\d+)$")


def parse_size(size: str | None) -> tuple[int, int] | None:
    """``"WxH"`` as (width, height), multiples of 8; None for ``auto`` (the model's own size)."""
    if not size or size == "auto":
        return None
    match = _SIZE.match(size.strip())
    if not match:
        raise InvalidParamsError("size must be 'auto' or WIDTHxHEIGHT, e.g. 512x512", param="size")
    width, height = int(match.group(1)), int(match.group(2))
    if not (8 <= width <= MAX_SIDE and 8 <= height <= MAX_SIDE) or width % 8 or height % 8:
        raise InvalidParamsError(f"size: width and height must be multiples of 8 from 8 to {MAX_SIDE}",
                                 param="size")
    return width, height


ImageRequest = ImagesRequest  # what to draw: the engine contract's request (src/contract/media.py)


class ImageGenerator:
    """Local diffusers pipelines by name; ``generate(request) -> {model, images: [png bytes]}``."""

    def __init__(self, model_dirs: list[str]) -> None:
        self.paths = {Path(d).expanduser().resolve().name: Path(d).expanduser() for d in model_dirs}
        self.worker = Worker("images")
        self._pipes: dict[str, Any] = {}
        self._lock = threading.Lock()

    def models(self) -> list[str]:
        return list(self.paths)

    def resolve(self, model: str | None) -> str:
        if not self.paths:
            raise ImageGenerationOffError(
                "image generation is off: no image model is configured; start the server with "
                "--visible_image_models=\"['/path/to/diffusers/pipeline']\"", param="model")
        if not model or model not in self.paths:
            if model and model not in ("dall-e-2", "dall-e-3", "gpt-image-1"):
                raise UnknownModelError(f"unknown image model {model!r}: use one of "
                                        f"{', '.join(self.paths)}")
            return next(iter(self.paths))
        return model

    def _load(self, name: str) -> Any:
        with self._lock:
            if name not in self._pipes:
                import torch
                from diffusers import DiffusionPipeline

                log.info("loading image model %s from %s", name, self.paths[name])
                pipe = DiffusionPipeline.from_pretrained(str(self.paths[name]), local_files_only=True,
                                                         dtype=torch.float32)
                pipe.set_progress_bar_config(disable=True)
                self._pipes[name] = pipe
            return self._pipes[name]

    def generate(self, request: ImageRequest) -> dict[str, Any]:
        """PNG images for ``request.prompt``; bad parameters raise before any work."""
        if not request.prompt or not request.prompt.strip():
            raise InvalidParamsError("prompt must not be empty", param="prompt")
        if not 1 <= request.n <= MAX_IMAGES:
            raise InvalidParamsError(f"n must be between 1 and {MAX_IMAGES}", param="n")
        size = parse_size(request.size)
        name = self.resolve(request.model)
        images = self.worker.run(lambda: self._generate(name, request, size))
        return {"model": name, "images": images}

    def _generate(self, name: str, request: ImageRequest, size: tuple[int, int] | None) -> list[bytes]:
        import torch

        pipe = self._load(name)
        kwargs: dict[str, Any] = {"prompt": request.prompt, "num_images_per_prompt": request.n}
        if size:
            kwargs["width"], kwargs["height"] = size
        if request.steps:
            kwargs["num_inference_steps"] = request.steps
        if request.guidance_scale is not None:
            kwargs["guidance_scale"] = request.guidance_scale
        if request.seed is not None:
            kwargs["generator"] = torch.Generator("cpu").manual_seed(int(request.seed))
        with torch.inference_mode():
            result = pipe(**kwargs)
        out = []
        for image in result.images:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            out.append(buffer.getvalue())
        return out

    def close(self) -> None:
        self.worker.close()
