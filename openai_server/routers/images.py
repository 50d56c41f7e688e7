"""POST /v1/images/generations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from openai_server.protocol import wire
from openai_server.protocol_media import ImageGenerationRequest
from openai_server.routers.deps import identity, image_service

router = APIRouter(tags=["images"])


@router.post("/images/generations")
async def create_image(body: ImageGenerationRequest, request: Request) -> dict[str, Any]:
    """Images from a local diffusers model (--visible_image_models); PNG, base64 or data: URLs."""
    identity(request, body.user)
    return wire(await image_service(request).generate(body))
