"""The engine's document service methods (embeddings, ingestion, collections) for the API.

Registered by :func:`src.ipc.services.register_engine_methods`; each handler takes its
request as the contract declares it (src/contract/documents.py) and answers a contract
struct. ``requester`` is who asks, as the API worker established it; workers are trusted,
users never talk to this socket. Errors are the DocumentService's
:class:`~src.docqa.collections.DocQAError` subclasses, which cross the socket by class
name and are mapped onto HTTP statuses by openai_server/errors.py.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from src.contract import (
    AddFilesRequest,
    AddTextRequest,
    CollectionDeleted,
    CollectionInfo,
    CollectionRequest,
    CollectionsRequest,
    CreateCollectionRequest,
    DeleteCollectionRequest,
    DeleteSourcesRequest,
    EmbedRequest,
    EmbedResult,
    IngestReport,
    RerankRequest,
    RerankResult,
    SourceInfo,
)
from src.docqa.collections import DocumentsDisabledError, Requester
from src.ipc.server import IpcServer

if TYPE_CHECKING:
    from src.docqa.service import DocumentService

log = logging.getLogger(__name__)


def requester(who: Requester | None) -> Requester | None:
    """Who asks (None: the server itself); a requester must have a name."""
    if who is not None and not who.name:
        raise ValueError("requester.name must not be empty")
    return who


def upload_name(filename: str) -> str:
    """The source name of an upload: its base name, without any folder the client sent."""
    name = Path(str(filename).replace("\\", "/")).name.strip()
    if not name or name in (".", "..") or "\x00" in name:
        raise ValueError(f"invalid file name {filename!r}")
    return name


def embedding_model_name(docs: DocumentService) -> str:
    """The name the API answers with: the flag's value, or a local model's folder name."""
    name = docs.embedder.name
    return name if not Path(name).is_absolute() else Path(name).name


class DocumentMethods:
    """The handlers, bound to the process's DocumentService (None: document Q&A is off)."""

    def __init__(self, docs: DocumentService | None) -> None:
        self._docs = docs

    @property
    def docs(self) -> DocumentService:
        if self._docs is None:
            raise DocumentsDisabledError(
                "document Q&A is off on this server (every --langchain_modes entry is LLM or Disabled)"
            )
        return self._docs

    def embed(self, request: EmbedRequest) -> EmbedResult:
        """Vectors of texts, or of token ids (the embedding model's own, vLLM's meaning, read
        as their text; their usage is the number of ids given). An input over the model's window is
        refused with the numbers."""
        if request.token_ids is not None:
            texts = self.docs.embedder.decode(request.token_ids)
        else:
            texts = list(request.texts or [])
        self.docs.embedder.check_window(texts)
        vectors, tokens = self.docs.embed(texts)
        if request.token_ids is not None:  # the ids given are what was read (vLLM's usage)
            tokens = sum(len(ids) for ids in request.token_ids)
        return EmbedResult(model=embedding_model_name(self.docs), dimension=int(vectors.shape[1]),
                           tokens=int(tokens), data=vectors.astype("<f4").tobytes())

    def add_files(self, request: AddFilesRequest) -> IngestReport:
        user = requester(request.requester)
        with tempfile.TemporaryDirectory(prefix="h2ogpt-upload-") as tmp:
            pairs = []
            for i, item in enumerate(request.files):
                name = upload_name(item.filename)
                folder = Path(tmp) / str(i)  # same-named uploads must not overwrite each other
                folder.mkdir()
                path = folder / name
                path.write_bytes(item.data)
                pairs.append((path, name))
            report = self.docs.add_files(request.collection, pairs, user, chunk=request.chunk,
                                         chunk_size=request.chunk_size or None)
        return msgspec.convert(report.as_dict(), IngestReport)

    def add_text(self, request: AddTextRequest) -> IngestReport:
        report = self.docs.add_text(
            request.collection, request.text, upload_name(request.source), requester(request.requester),
            chunk=request.chunk, chunk_size=request.chunk_size or None,
        )
        return msgspec.convert(report.as_dict(), IngestReport)

    def list_sources(self, request: CollectionRequest) -> list[SourceInfo]:
        sources = self.docs.list_sources(request.collection, requester(request.requester))
        return [SourceInfo(source=s.source, chunks=s.chunks, hash=s.hash, ingested_at=s.ingested_at)
                for s in sources]

    def delete_sources(self, request: DeleteSourcesRequest) -> list[str]:
        return self.docs.delete_sources(request.collection, request.sources, requester(request.requester))

    def rerank(self, request: RerankRequest) -> RerankResult:
        """Scores of documents for a query (src.docqa.service.DocumentService.rerank)."""
        scores, model, tokens = self.docs.rerank(request.query, request.documents)
        name = model if not Path(model).is_absolute() else Path(model).name
        return RerankResult(scores=[float(s) for s in scores], model=name, tokens=int(tokens))

    def list_collections(self, request: CollectionsRequest) -> list[CollectionInfo]:
        return [CollectionInfo(name=c.name, scope=c.scope, builtin=c.builtin)
                for c in self.docs.list_collections(requester(request.requester))]

    def create_collection(self, request: CreateCollectionRequest) -> CollectionInfo:
        info = self.docs.create_collection(request.name, request.scope, requester(request.requester))
        return CollectionInfo(name=info.name, scope=info.scope, builtin=info.builtin)

    def delete_collection(self, request: DeleteCollectionRequest) -> CollectionDeleted:
        self.docs.delete_collection(request.name, requester(request.requester))
        return CollectionDeleted(name=request.name)


def register_document_methods(server: IpcServer, docs: DocumentService | None) -> None:
    """embed, add_files, add_text, list_sources, delete_sources and the collection calls."""
    methods = DocumentMethods(docs)
    typed: dict[str, type] = {
        "embed": EmbedRequest, "rerank": RerankRequest, "add_files": AddFilesRequest, "add_text": AddTextRequest,
        "list_sources": CollectionRequest, "delete_sources": DeleteSourcesRequest,
        "list_collections": CollectionsRequest, "create_collection": CreateCollectionRequest,
        "delete_collection": DeleteCollectionRequest,
    }
    for name, request_type in typed.items():
        server.register_typed(name, request_type, getattr(methods, name))
