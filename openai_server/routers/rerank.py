"""POST /v1/rerank and POST /rerank: documents scored against a query (Cohere / Jina shape)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request

from openai_server.protocol import wire
from openai_server.protocol_rerank import (
    RerankRequest,
    RerankResponse,
    RerankResult,
    RerankResultDocument,
    RerankUsage,
)
from openai_server.routers.deps import engine_client, identity
from src import contract

router = APIRouter(tags=["rerank"])


async def rerank(request: Request, body: RerankRequest) -> RerankResponse:
    """The engine's scores, sorted best first and cut to ``top_n``."""
    texts = body.texts()
    raw = await engine_client(request).rerank(contract.RerankRequest(query=body.query, documents=texts))
    scores = raw.scores
    order = sorted(range(len(texts)), key=lambda i: -scores[i])[: body.top_n or len(texts)]
    results = [RerankResult(index=i, relevance_score=scores[i],
                            document=RerankResultDocument(text=texts[i]) if body.return_documents else None)
               for i in order]
    tokens = raw.tokens
    return RerankResponse(id=f"rerank-{uuid.uuid4().hex}", model=raw.model, results=results,
                          usage=RerankUsage(prompt_tokens=tokens, total_tokens=tokens))


@router.post("/rerank")
async def create_rerank(body: RerankRequest, request: Request) -> dict[str, Any]:
    """Relevance of each document to the query, best first: by ``--reranker_model`` (a
    cross-encoder) when one is loaded, else by the embedding model's cosine similarity;
    ``model`` in the response says which scored."""
    identity(request, body.user)
    data = wire(await rerank(request, body))
    for result in data["results"]:
        if result.get("document") is None:
            result.pop("document", None)
    return data
