"""The contract's document services: embeddings, reranking, ingestion, sources, collections.

Part of the engine contract (src/contract/__init__.py re-exports every name here): what the
API workers ask of the engine's DocumentService, typed and checked on arrival like the rest.
A ``requester`` is who asks (their personal collections are theirs); None is the server.
"""

from __future__ import annotations

from typing import Literal

from src.contract.base import Contract, Requester


class EmbedRequest(Contract):
    """Texts, or token ids of the embedding model's own tokenizer (read as their text)."""

    texts: list[str] | None = None
    token_ids: list[list[int]] | None = None


class EmbedResult(Contract):
    """Vectors as little-endian float32 bytes, row-major, ``dimension`` floats a row."""

    model: str
    dimension: int
    tokens: int
    data: bytes


class RerankRequest(Contract):
    query: str
    documents: list[str]


class RerankResult(Contract):
    """A score per document, in their order, and the model that scored them."""

    scores: list[float]
    model: str
    tokens: int


class FileUpload(Contract):
    filename: str
    data: bytes


class AddFilesRequest(Contract):
    collection: str
    files: list[FileUpload]
    chunk: bool = True
    chunk_size: int | None = None
    requester: Requester | None = None


class AddTextRequest(Contract):
    collection: str
    text: str
    source: str
    chunk: bool = True
    chunk_size: int | None = None
    requester: Requester | None = None


class IngestedFile(Contract):
    """What happened to one file: added, updated, skipped (unchanged) or failed (and why)."""

    source: str
    status: str
    chunks: int = 0
    reason: str = ""


class IngestReport(Contract):
    files: list[IngestedFile]
    removed: list[str] = []
    summary: str = ""


class CollectionRequest(Contract):
    """A request about one collection (its sources)."""

    collection: str
    requester: Requester | None = None


class SourceInfo(Contract):
    source: str
    chunks: int
    hash: str
    ingested_at: str


class DeleteSourcesRequest(Contract):
    collection: str
    sources: list[str]
    requester: Requester | None = None


class CollectionsRequest(Contract):
    """The collections a requester sees."""

    requester: Requester | None = None


class CollectionInfo(Contract):
    name: str
    scope: Literal["shared", "personal"]
    builtin: bool = False


class CreateCollectionRequest(Contract):
    name: str
    scope: Literal["shared", "personal"] = "personal"
    requester: Requester | None = None


class DeleteCollectionRequest(Contract):
    name: str
    requester: Requester | None = None


class CollectionDeleted(Contract):
    name: str
    deleted: bool = True
