"""Wire schemas of POST /v1/rerank (and /rerank): the Cohere / Jina shape vLLM and llama.cpp serve.

Request ``{model, query, documents: [str | {text}], top_n, return_documents}``; response
``{id, model, results: [{index, relevance_score, document?}], usage}``, results sorted by
score, best first. ``model`` in the response names the model that scored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from openai_server.protocol import OpenAIBaseModel

MAX_RERANK_DOCUMENTS = 1000


class RerankDocument(BaseModel):
    """A document given as an object, as Cohere's and Jina's clients may send it."""

    text: str


class RerankRequest(OpenAIBaseModel):
    """POST /v1/rerank. ``model`` is accepted and ignored: the server's ``--reranker_model``
    scores, else its embedding model (cosine similarity)."""

    model: str | None = Field(None, description="Accepted for compatibility; ignored.")
    query: str = Field(..., min_length=1, description="The question the documents are scored against.")
    documents: list[str | RerankDocument] = Field(
        ..., description=f"1 to {MAX_RERANK_DOCUMENTS} documents: strings or {{\"text\": ...}} objects."
    )
    top_n: int | None = Field(None, ge=1, description="Return only the best top_n; all when absent.")
    return_documents: bool = Field(True, description="Include each result's document text.")
    user: str | None = Field(None, description="'username:password' when --auth_access=closed.")

    @field_validator("documents")
    @classmethod
    def _documents(cls, value: list[Any]) -> list[Any]:
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_RERANK_DOCUMENTS:
            raise ValueError(f"takes at most {MAX_RERANK_DOCUMENTS} documents, got {len(value)}")
        return value

    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


class RerankResultDocument(BaseModel):
    text: str


class RerankResult(BaseModel):
    index: int = Field(..., description="Position of the document in the request.")
    relevance_score: float
    document: RerankResultDocument | None = None


class RerankUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class RerankResponse(BaseModel):
    id: str
    object: str = "rerank"
    model: str = Field(..., description="The model that scored: the reranker, or the embedding model.")
    results: list[RerankResult]
    usage: RerankUsage
