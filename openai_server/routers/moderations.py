"""POST /v1/moderations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from openai_server.protocol_moderation import ModerationRequest
from openai_server.routers.deps import identity, moderation_service

router = APIRouter(tags=["moderations"])


@router.post("/moderations")
async def create_moderation(body: ModerationRequest, request: Request) -> dict[str, Any]:
    """OpenAI's moderation categories scored for each input: by ``--moderation_model`` (a
    text classifier) when one is loaded, else by the embedding model's similarity to a
    description of each category (a heuristic; docs/moderations.md). ``model`` is ignored."""
    identity(request)  # with --auth_access=closed, a known user is required
    return (await moderation_service(request).moderate(body)).model_dump(mode="json")
