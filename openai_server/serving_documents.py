"""Serving of the document endpoints: embeddings, files and collections over the engine.

Routers hand validated requests and the caller's identity here; these services call the
engine's document methods over IPC (src/ipc/documents.py) and shape OpenAI-style
responses. Errors raised in the engine (unknown collection, upload not allowed, ...)
propagate and are mapped onto the envelope by openai_server/errors.py.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
from dataclasses import dataclass

import msgspec

from openai_server.errors import InvalidRequestError, NotFoundError
from openai_server.files import FileStore
from openai_server.identity import Identity
from openai_server.protocol_documents import (
    FILE_PURPOSES,
    Collection,
    CollectionCreate,
    CollectionDeleted,
    CollectionList,
    Embedding,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
    FileDeleted,
    FileList,
    FileObject,
    IngestedFile,
    IngestResult,
    Source,
    SourceList,
    SourcesDeleted,
    TextIngest,
)
from src import contract
from src.contract import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """A file to ingest: its name and bytes (from a multipart part or /v1/files)."""

    filename: str
    data: bytes


class EmbeddingService:
    """POST /v1/embeddings over the engine's ``embed``."""

    def __init__(self, client: Engine) -> None:
        self.client = client

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        inputs = request.inputs()
        asked = contract.EmbedRequest(token_ids=inputs) if isinstance(inputs[0], list) else \
            contract.EmbedRequest(texts=inputs)  # type: ignore[arg-type]
        raw = await self.client.embed(asked)
        dim, blob = raw.dimension, raw.data
        if request.dimensions is not None and request.dimensions != dim:
            raise InvalidRequestError(
                f"dimensions: this server's embedding model gives {dim}-dimensional vectors",
                param="dimensions",
            )
        row = dim * 4
        rows = [blob[i * row:(i + 1) * row] for i in range(len(inputs))]
        data = [
            Embedding(index=i, embedding=base64.b64encode(r).decode() if request.encoding_format == "base64"
                      else list(struct.unpack(f"<{dim}f", r)))
            for i, r in enumerate(rows)
        ]
        tokens = raw.tokens
        return EmbeddingResponse(data=data, model=raw.model,
                                 usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))


class FileService:
    """/v1/files over a FileStore; every call is scoped to its owner (the API key)."""

    def __init__(self, store: FileStore) -> None:
        self.store = store

    async def create(self, owner: str, filename: str | None, purpose: str, data: bytes) -> FileObject:
        if purpose not in FILE_PURPOSES:
            raise InvalidRequestError(f"purpose must be one of {', '.join(FILE_PURPOSES)}", param="purpose")
        if not filename:
            raise InvalidRequestError("file: the upload has no file name", param="file")
        return await asyncio.to_thread(self.store.create, owner, filename, purpose, data)

    async def list_files(self, owner: str, purpose: str | None, limit: int, order: str,
                   after: str | None) -> FileList:
        files = await asyncio.to_thread(self.store.list_files, owner, purpose)
        if order == "asc":
            files.reverse()
        if after is not None:
            ids = [f.id for f in files]
            files = files[ids.index(after) + 1:] if after in ids else []
        page = files[:limit]
        return FileList(data=page, first_id=page[0].id if page else None,
                        last_id=page[-1].id if page else None, has_more=len(files) > limit)

    async def get(self, owner: str, file_id: str) -> FileObject:
        found = await asyncio.to_thread(self.store.get, owner, file_id)
        if found is None:
            raise self.missing(file_id)
        return found

    async def content(self, owner: str, file_id: str) -> tuple[FileObject, bytes]:
        obj = await self.get(owner, file_id)
        data = await asyncio.to_thread(self.store.content, owner, file_id)
        if data is None:
            raise self.missing(file_id)
        return obj, data

    async def delete(self, owner: str, file_id: str) -> FileDeleted:
        if not await asyncio.to_thread(self.store.delete, owner, file_id):
            raise self.missing(file_id)
        return FileDeleted(id=file_id)

    @staticmethod
    def missing(file_id: str) -> NotFoundError:
        return NotFoundError(f"no file with id {file_id!r}", param="file_id", code="file_not_found")


class CollectionService:
    """/v1/collections: collections, ingestion and sources over the engine's document methods."""

    def __init__(self, client: Engine, files: FileService) -> None:
        self.client = client
        self.files = files

    async def collections(self, who: Identity) -> CollectionList:
        raw = await self.client.list_collections(contract.CollectionsRequest(requester=who))
        return CollectionList(data=[Collection(name=c.name, scope=c.scope, builtin=c.builtin) for c in raw])

    async def create(self, body: CollectionCreate, who: Identity) -> Collection:
        c = await self.client.create_collection(contract.CreateCollectionRequest(
            name=body.name, scope=body.scope, requester=who))
        return Collection(name=c.name, scope=c.scope, builtin=c.builtin)

    async def delete(self, name: str, who: Identity) -> CollectionDeleted:
        await self.client.delete_collection(contract.DeleteCollectionRequest(name=name, requester=who))
        return CollectionDeleted(name=name)

    async def uploads_of(self, owner: str, file_ids: list[str]) -> list[Upload]:
        """The stored files ``file_ids`` of ``owner`` (404 for any unknown id)."""
        found = []
        for file_id in file_ids:
            obj, data = await self.files.content(owner, file_id)
            found.append(Upload(obj.filename, data))
        return found

    async def add_files(self, name: str, uploads: list[Upload], who: Identity,
                        chunk: bool = True, chunk_size: int | None = None) -> IngestResult:
        """Ingest ``uploads``; 400 naming each file when none of them could be ingested."""
        if not uploads:
            raise InvalidRequestError("send at least one 'file' part or 'file_id'", param="file")
        raw = await self.client.add_files(contract.AddFilesRequest(
            collection=name, chunk=chunk, chunk_size=chunk_size, requester=who,
            files=[contract.FileUpload(filename=u.filename, data=u.data) for u in uploads]))
        return self._result(name, raw)

    async def add_text(self, name: str, body: TextIngest, who: Identity) -> IngestResult:
        raw = await self.client.add_text(contract.AddTextRequest(
            collection=name, text=body.text, source=body.source, chunk=body.chunk, chunk_size=body.chunk_size,
            requester=who))
        return self._result(name, raw)

    async def sources(self, name: str, who: Identity) -> SourceList:
        raw = await self.client.list_sources(contract.CollectionRequest(collection=name, requester=who))
        return SourceList(data=[Source(source=s.source, chunks=s.chunks, hash=s.hash, ingested_at=s.ingested_at)
                                for s in raw])

    async def delete_sources(self, name: str, sources: list[str], who: Identity) -> SourcesDeleted:
        if not sources:
            raise InvalidRequestError("name the sources to delete: ?source=<name>[&source=...]",
                                      param="source")
        deleted = await self.client.delete_sources(contract.DeleteSourcesRequest(
            collection=name, sources=sources, requester=who))
        return SourcesDeleted(collection=name, deleted=list(deleted))

    @staticmethod
    def _result(name: str, raw: contract.IngestReport) -> IngestResult:
        files = [IngestedFile.model_validate(msgspec.to_builtins(f)) for f in raw.files]
        failed = [f for f in files if f.status == "failed"]
        if files and len(failed) == len(files):
            reasons = "; ".join(f"{f.source}: {f.reason}" for f in failed)
            raise InvalidRequestError(f"could not ingest into {name!r}: {reasons}", param="file",
                                      code="file_not_ingested")
        return IngestResult(collection=name, files=files, summary=raw.summary)
