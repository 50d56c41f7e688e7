"""POST /v1/embeddings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from openai_server.protocol import wire
from openai_server.protocol_documents import EmbeddingRequest
from openai_server.routers.deps import embedding_service, identity

router = APIRouter(tags=["embeddings"])


@router.post("/embeddings")
async def create_embeddings(body: EmbeddingRequest, request: Request) -> dict[str, Any]:
    """One vector per input text, from the server's embedding model (``model`` is ignored);
    ``encoding_format=base64`` gives little-endian float32 bytes, base64-encoded."""
    identity(request, body.user)  # with --auth_access=closed, a known user is required
    return wire(await embedding_service(request).embed(body))
