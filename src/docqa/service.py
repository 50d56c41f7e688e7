"""DocumentService: the one object the UI, the API and evaluate() use for documents.

All methods are thread-safe and run in the engine process (the embedding model lives
here). ``user`` is a :class:`Requester` (``None`` = the server itself, which sees shared
collections only). Errors are :class:`DocQAError` subclasses whose messages can be shown
to users as they are.

Example::

    docs = DocumentService.from_settings(settings)
    me = Requester("alice")
    report = docs.add_files("MyData", [("/tmp/upload123", "notes.pdf")], me)
    print(report.summary())
    docs.list_sources("MyData", me)          # [SourceInfo(source='notes.pdf', ...)]
    hits = docs.retrieve("MyData", "What is due in March?", k=3, user=me)
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from src.docqa.chroma_server import ChromaServer, ServerChromaStore
from src.docqa.collections import (
    CollectionExistsError,
    CollectionInfo,
    CollectionLayout,
    DocQAError,
    Location,
    PermissionDeniedError,
    Requester,
    Scope,
    UnknownCollectionError,
    validate_name,
)
from src.docqa.embeddings import Embedder
from src.docqa.ingest import Ingestor, IngestReport
from src.docqa.loaders import is_supported, use_ocr
from src.docqa.ocr import TesseractOcr
from src.docqa.rerank import Reranker
from src.docqa.retrieval import RetrievalOptions, hybrid_search
from src.docqa.splitting import DEFAULT_CHUNK_OVERLAP, indexed_text
from src.docqa.store import ChromaStore, Hit, Where
from src.settings import Settings

if TYPE_CHECKING:
    from src.metrics import IngestObserver

log = logging.getLogger(__name__)

DEFAULT_MAX_DISTANCE = 0.8


@dataclass(frozen=True)
class SourceInfo:
    """One ingested file (or text) of a collection."""

    source: str
    chunks: int
    hash: str
    ingested_at: str


@dataclass(frozen=True)
class OversizedCollection:
    """A collection with chunks the embedding model cannot read whole."""

    name: str
    location: str
    oversized: int
    sampled: int
    longest: int
    window: int

    @property
    def message(self) -> str:
        return (f"collection {self.name!r} ({self.location}) has chunks longer than the embedding "
                f"model reads: {self.oversized} of {self.sampled} checked exceed {self.window} tokens "
                f"(longest {self.longest}), so their ends were never embedded and retrieval misses "
                f"them. Rebuild it: python src/make_db.py --user_path=<its folder> "
                f"--collection_name={self.name} --rebuild (or delete the collection and add the files "
                f"again); nothing is re-embedded automatically.")


def choice_filter(document_choice: Iterable[str]) -> Where | None:
    """A Chroma filter keeping chunks whose origin or source is one of ``document_choice``."""
    names = [n for n in document_choice if n]
    if not names:
        return None
    return {"$or": [{"origin": {"$in": names}}, {"source": {"$in": names}}]}


class DocumentService:
    """Collections, ingestion and retrieval over Chroma with one embedding model."""

    def __init__(
        self,
        embedder: Embedder,
        db_root: str | Path = ".",
        modes: list[str] | None = None,
        mode_types: dict[str, str] | None = None,
        chunk_size: int = 512,
        allow_upload_to_user_data: bool = True,
        allow_upload_to_my_data: bool = True,
        max_distance: float = DEFAULT_MAX_DISTANCE,
        chroma_server: ChromaServer | None = None,
        observer: IngestObserver | None = None,
        chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
        retrieval: RetrievalOptions | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        """``chroma_server``: keep shared and personal collections in that Chroma server
        (connected by the caller, see :meth:`ChromaServer.connect`) instead of under ``db_root``;
        ``observer`` sees the report of every ingestion (src/metrics.py)."""
        self.embedder = embedder
        self.server = chroma_server
        self._scratch = Path(tempfile.mkdtemp(prefix="h2ogpt-scratch-"))
        atexit.register(self.close)
        self.layout = CollectionLayout(
            Path(db_root), self._scratch, modes or ["UserData", "MyData", "LLM", "Disabled"], mode_types,
            server_names=chroma_server.names if chroma_server is not None else None,
        )
        self.ingestor = Ingestor(embedder, chunk_size, observer, chunk_overlap)
        self.retrieval = retrieval or RetrievalOptions()
        self.reranker = reranker
        self.allow_upload_to_user_data = allow_upload_to_user_data
        self.allow_upload_to_my_data = allow_upload_to_my_data
        self.max_distance = max_distance
        self._stores: dict[Location, ChromaStore] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder | None = None,
                      observer: IngestObserver | None = None) -> DocumentService:
        """The service the flags describe; loads the embedding model when --pre_load_embedding_model.

        With --chroma_server, raises VectorStoreUnavailableError (naming the URL) when the
        server does not answer, before anything is loaded."""
        server = ChromaServer(settings.chroma_server).connect() if settings.chroma_server else None
        ocr = TesseractOcr.find() if settings.enable_ocr else None
        if settings.enable_ocr and ocr is None:
            log.warning("--enable_ocr: the tesseract program is not installed (apt-get install "
                        "tesseract-ocr); images and scanned PDF pages are not read")
        use_ocr(ocr)
        embedder = embedder or Embedder(settings.hf_embedding_model)
        if settings.pre_load_embedding_model:
            embedder.load()
        service = cls(
            embedder,
            db_root=settings.db_root,
            modes=list(settings.langchain_modes),
            mode_types=dict(settings.langchain_mode_types),
            chunk_size=settings.chunk_size,
            allow_upload_to_user_data=settings.allow_upload_to_user_data,
            allow_upload_to_my_data=settings.allow_upload_to_my_data,
            max_distance=settings.docs_distance_cutoff,
            chroma_server=server,
            observer=observer,
            chunk_overlap=settings.chunk_overlap,
            retrieval=RetrievalOptions(hybrid=settings.hybrid_search, fusion=settings.hybrid_fusion,
                                       alpha=settings.hybrid_alpha,
                                       candidates=settings.retrieval_candidates),
            reranker=Reranker(settings.reranker_model).load() if settings.reranker_model else None,
        )
        service.warn_oversized()
        return service

    def oversized(self, sample: int = 200) -> list[OversizedCollection]:
        """Shared collections holding chunks longer than the embedding model reads (built
        before chunks were bounded by its window, or with another model's window): the model
        embedded only their beginning. Looks at the first ``sample`` chunks of each; never
        re-embeds anything."""
        window = self.embedder.window
        found = []
        for info in self.layout.visible(None):
            store = self._store(info)
            if not store.exists():
                continue
            hits = store.get(include_documents=True, limit=sample)
            longest = max((self.embedder.tokens_read(indexed_text(h.content, h.metadata)) for h in hits),
                          default=0)
            over = sum(1 for h in hits if self.embedder.tokens_read(indexed_text(h.content, h.metadata)) > window)
            if over:
                found.append(OversizedCollection(info.name, str(info.location), over, len(hits), longest,
                                                 window))
        return found

    def warn_oversized(self) -> list[OversizedCollection]:
        """Log, for each collection :meth:`oversized` finds, how to rebuild it."""
        found = self.oversized()
        for c in found:
            log.warning("%s", c.message)
        return found

    def close(self) -> None:
        """Remove the scratch users' temporary collections."""
        shutil.rmtree(self._scratch, ignore_errors=True)

    # --- collections ------------------------------------------------------------------------
    def _store(self, info: CollectionInfo) -> ChromaStore:
        with self._lock:
            store = self._stores.get(info.location)
            if store is None:
                if isinstance(info.location, Path):
                    store = ChromaStore(info.location, info.name, self.embedder.name)
                else:
                    assert self.server is not None
                    store = ServerChromaStore(self.server, info.location, info.name, self.embedder.name)
                self._stores[info.location] = store
            return store

    def collection(self, name: str, user: Requester | None) -> CollectionInfo:
        """The collection ``name`` as ``user`` sees it; raises UnknownCollectionError."""
        return self.layout.resolve(name, user)

    def list_collections(self, user: Requester | None) -> list[CollectionInfo]:
        """Collections ``user`` can use: the built-in ones, then shared and personal ones."""
        return self.layout.visible(user)

    def create_collection(self, name: str, scope: Scope, user: Requester | None) -> CollectionInfo:
        """Create an empty collection, shared (everyone sees it) or personal to ``user``."""
        validate_name(name)
        if any(c.name == name for c in self.layout.visible(user)):
            raise CollectionExistsError(f"collection {name!r} already exists")
        info = CollectionInfo(name, scope, self.layout.location(name, scope, user))
        self._store(info).open(create=True)
        log.info("created %s collection %r", scope, name)
        return info

    def delete_collection(self, name: str, user: Requester | None) -> None:
        """Delete a collection and its database. Built-in ones are emptied, not removed."""
        info = self.collection(name, user)
        self._check_write(info)
        store = self._store(info)
        store.drop()
        with self._lock:
            self._stores.pop(info.location, None)
        log.info("deleted collection %r (%s)", name, info.scope)

    def _check_write(self, info: CollectionInfo) -> None:
        if info.name == "UserData" and not self.allow_upload_to_user_data:
            raise PermissionDeniedError("changes to UserData are disabled (--allow_upload_to_user_data)")
        if info.scope == "personal" and not self.allow_upload_to_my_data:
            raise PermissionDeniedError("changes to personal collections are disabled "
                                        "(--allow_upload_to_my_data)")

    # --- documents --------------------------------------------------------------------------
    def add_files(self, collection: str, files: Iterable[tuple[str | Path, str]],
                  user: Requester | None, chunk: bool = True,
                  chunk_size: int | None = None) -> IngestReport:
        """Ingest ``(path on disk, source name)`` pairs into a collection.

        Unchanged files are skipped, changed ones replaced; unsupported or unreadable files
        are reported in the result (``report.failed``) and never stop the others.
        """
        info = self.collection(collection, user)
        self._check_write(info)
        return self.ingestor.ingest_files(self._store(info), files, chunk, chunk_size)

    def add_text(self, collection: str, text: str, source: str, user: Requester | None,
                 chunk: bool = True, chunk_size: int | None = None) -> IngestReport:
        """Ingest raw text under the name ``source``."""
        info = self.collection(collection, user)
        self._check_write(info)
        return self.ingestor.ingest_text(self._store(info), text, source, chunk, chunk_size)

    def list_sources(self, collection: str, user: Requester | None) -> list[SourceInfo]:
        """The files (or texts) in a collection, sorted by name."""
        store = self._store(self.collection(collection, user))
        if not store.exists():
            return []
        firsts = store.get({"chunk_id": 0})
        return sorted(
            (SourceInfo(str(h.metadata["origin"]), int(h.metadata.get("n_chunks", 0)),
                        str(h.metadata.get("hash", "")), str(h.metadata.get("ingested_at", "")))
             for h in firsts),
            key=lambda s: s.source,
        )

    def delete_sources(self, collection: str, sources: Iterable[str], user: Requester | None) -> list[str]:
        """Delete the named sources (an origin, or an archive member); returns those found."""
        info = self.collection(collection, user)
        self._check_write(info)
        return self.ingestor.remove(self._store(info), sources)

    def sync_user_path(self, user_path: str | Path, collection: str = "UserData",
                       progress: bool = True) -> IngestReport:
        """Ingest every supported file under ``user_path`` and remove the files deleted from it.

        Unchanged files are skipped. Shows a tqdm progress bar when ``progress``; logs a
        one-line summary.
        """
        from tqdm import tqdm

        root = Path(user_path).expanduser().resolve()
        info = self.collection(collection, None)
        store = self._store(info)
        files = sorted(p for p in root.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        with tqdm(total=len(files), desc=f"Ingesting {root} into {collection}", unit="file",
                  disable=not progress) as bar:
            report = self.ingestor.ingest_files(
                store, ((p, str(p)) for p in files), progress=lambda _: bar.update(1)
            )
        present = {str(p) for p in files}
        prefix = str(root) + os.sep
        if store.exists():
            gone = [s.source for s in self.list_sources(collection, None)
                    if s.source.startswith(prefix) and s.source not in present]
            report.removed = self.ingestor.remove(store, gone)
        unsupported = sum(1 for p in files if not is_supported(p.name))
        log.info("%s from %s: %s%s", collection, root, report.summary(),
                 f" ({unsupported} unsupported)" if unsupported else "")
        return report

    # --- retrieval --------------------------------------------------------------------------
    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Vectors for ``texts`` and the tokens the model read (for usage.prompt_tokens)."""
        return self.embedder.embed(texts), self.embedder.count_tokens_batch(texts)

    def retrieve(self, collection: str, query: str, k: int, user: Requester | None,
                 document_choice: Iterable[str] = (), max_distance: float | None = None,
                 hybrid: bool | None = None, rerank: bool | None = None) -> list[Hit]:
        """The ``k`` chunks that best answer ``query``, best first.

        Dense candidates beyond the distance cut-off are dropped; with hybrid search (the
        server's ``--hybrid_search`` unless ``hybrid`` says) lexical matches are kept
        whatever their distance, and the two rankings are fused; a loaded reranker then
        reorders the fused candidates (unless ``rerank`` is False)."""
        store = self._store(self.collection(collection, user))
        if not store.exists():
            return []
        cutoff = self.max_distance if max_distance is None else max_distance
        options = self.retrieval if hybrid is None else replace(self.retrieval, hybrid=hybrid)
        options = options if rerank is None else replace(options, rerank=rerank)
        names = [n for n in document_choice if n]
        reranker = self.reranker if options.rerank else None
        depth = max(k, options.candidates) if reranker is not None else k
        hits = hybrid_search(store, query, self.embedder.embed_query(query), depth, choice_filter(names), names,
                             options, cutoff)
        if reranker is not None and len(hits) > 1:
            head = hits[: options.candidates]
            scores = reranker.score(query, [indexed_text(h.content, h.metadata) for h in head])
            order = sorted(range(len(head)), key=lambda i: -scores[i])
            hits = [head[i] for i in order] + hits[options.candidates:]
        return hits[:k]

    def rerank(self, query: str, documents: list[str]) -> tuple[list[float], str, int]:
        """Relevance of each document to ``query`` (higher is better), the model that scored,
        and the tokens it read: the reranker when loaded, else embedding cosine similarity."""
        if self.reranker is not None:
            return self.reranker.score(query, documents), self.reranker.name, \
                self.reranker.count_tokens(query, documents)
        vectors = self.embedder.embed([query, *documents])
        scores = (vectors[1:] @ vectors[0]).astype(float).tolist()
        return scores, self.embedder.name, self.embedder.count_tokens_batch([query, *documents])

    def chunks(self, collection: str, user: Requester | None, document_choice: Iterable[str] = (),
               limit: int | None = None) -> list[Hit]:
        """Chunks of the chosen sources (all when empty) in document order."""
        store = self._store(self.collection(collection, user))
        if not store.exists():
            return []
        hits = store.get(choice_filter(document_choice), include_documents=True)
        hits.sort(key=lambda h: (str(h.metadata.get("origin")), int(h.metadata.get("chunk_id", 0))))
        return hits[:limit] if limit is not None else hits


__all__ = [
    "DocQAError",
    "DocumentService",
    "Requester",
    "SourceInfo",
    "UnknownCollectionError",
]
