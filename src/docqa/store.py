"""One collection of chunks in an embedded Chroma ``PersistentClient`` folder.

Every collection lives in its own folder (``db_dir_<name>``), as in h2oGPT; with
``--chroma_server`` it lives in a Chroma server instead (:mod:`src.docqa.chroma_server`,
a subclass that changes only how the collection is opened, found and dropped). Chroma is
always opened with ``embedding_function=None`` and given precomputed vectors: its default
embedding function would download a model. The collection's metadata records the
embedding model that built it, and opening it with another model raises
:class:`EmbeddingModelMismatch` instead of returning meaningless neighbours.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.docqa.lexical import LexicalHit, LexicalIndex
from src.docqa.splitting import indexed_text
from src.errors import EmbeddingModelMismatch

log = logging.getLogger(__name__)

Where = dict[str, Any]


class StoreError(RuntimeError):
    """Base of the vector store's errors."""


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk; ``distance`` is the cosine distance (0 = same direction)."""

    id: str
    content: str
    metadata: dict[str, Any]
    distance: float


_clients_lock = threading.Lock()


def _client(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    with _clients_lock:
        return chromadb.PersistentClient(
            path=str(path),
            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
        )


def _forget_client(path: Path) -> None:
    """Drop Chroma's cached client of ``path`` so the folder can be removed and made anew."""
    from chromadb.api.shared_system_client import SharedSystemClient

    with _clients_lock:
        system = SharedSystemClient._identifier_to_system.pop(str(path), None)
        if system is not None:
            try:
                system.stop()
            except Exception:  # stopping is best effort; the folder is removed next
                log.debug("stopping chroma system of %s failed", path, exc_info=True)


class ChromaStore:
    """The chunks of one collection: upsert with vectors, query by vector, get and delete by metadata."""

    def __init__(self, path: Path, name: str, embedding_model: str) -> None:
        self.path = Path(path)
        self.name = name
        self.embedding_model = embedding_model
        self._collection: Any = None
        self._lock = threading.Lock()
        self._lexical: LexicalIndex | None = None
        self._lexical_lock = threading.Lock()

    @property
    def key(self) -> str:
        """Identifies the collection's storage (its folder here), e.g. for per-store locks."""
        return str(self.path)

    def _lexical_folder(self) -> Path | None:
        """Where the lexical index is kept: beside Chroma's files in the collection's folder."""
        return self.path / "lexical"

    @contextmanager
    def _calls(self) -> Iterator[None]:
        """Around every call into Chroma (the server subclass maps transport errors here)."""
        yield

    def _checked(self, collection: Any) -> Any:
        """``collection`` when it was built with our embedding model; else EmbeddingModelMismatch."""
        recorded = (collection.metadata or {}).get("embedding_model")
        if recorded != self.embedding_model:
            raise EmbeddingModelMismatch(
                f"collection {self.name!r} in {self.key} was built with embedding model "
                f"{recorded!r}, but this server uses {self.embedding_model!r}: start with "
                f"--hf_embedding_model={recorded} or delete the collection and ingest again"
            )
        return collection

    def _get_or_create(self, client: Any, chroma_name: str) -> Any:
        return self._checked(client.get_or_create_collection(
            chroma_name,
            embedding_function=None,
            metadata={"embedding_model": self.embedding_model},
            configuration={"hnsw": {"space": "cosine"}},
        ))

    # --- opening --------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.path / "chroma.sqlite3").exists()

    def open(self, create: bool = True) -> Any:
        """The Chroma collection, created when missing (``create``), checked against the model."""
        with self._lock:
            if self._collection is not None:
                return self._collection
            if not create and not self.exists():
                raise StoreError(f"collection {self.name!r} has no database at {self.path}")
            self.path.mkdir(parents=True, exist_ok=True)
            self._collection = self._get_or_create(_client(self.path), self.name)
            return self._collection

    def drop(self) -> None:
        """Delete the collection and its folder."""
        self._lexical = None
        with self._lock:
            if self.exists():
                try:
                    _client(self.path).delete_collection(self.name)
                except Exception:  # a half-made folder: removing it is enough
                    log.debug("delete_collection %s failed", self.name, exc_info=True)
            self._collection = None
            _forget_client(self.path)
            shutil.rmtree(self.path, ignore_errors=True)

    # --- data -----------------------------------------------------------------------------
    def upsert(self, ids: Sequence[str], vectors: np.ndarray, documents: Sequence[str],
               metadatas: Sequence[dict[str, Any]]) -> None:
        with self._calls():
            collection = self.open()
            lexical = self.lexical  # opened (and reconciled) before this write, not after
            step = max(1, min(5000, int(collection._client.get_max_batch_size())))
            for start in range(0, len(ids), step):
                end = start + step
                collection.upsert(
                    ids=list(ids[start:end]),
                    embeddings=vectors[start:end],
                    documents=list(documents[start:end]),
                    metadatas=list(metadatas[start:end]),
                )
            lexical.add(ids, [indexed_text(d, m) for d, m in zip(documents, metadatas, strict=True)],
                             [str(m.get("origin", "")) for m in metadatas],
                             [str(m.get("source", "")) for m in metadatas])
            self._mark_changed(collection)

    def query(self, vector: np.ndarray, k: int, where: Where | None = None) -> list[Hit]:
        with self._calls():
            # no count() first: Chroma (1.x) answers fewer than ``k`` results, or none, by
            # itself, and counting costs a scan (85 ms at 1,000,000 chunks, bench/docqa.py)
            result = self.open().query(
                query_embeddings=[vector],
                n_results=k,
                where=where or None,
                include=["documents", "metadatas", "distances"],
            )
        return [
            Hit(id_, doc or "", dict(meta or {}), float(dist))
            for id_, doc, meta, dist in zip(
                result["ids"][0], result["documents"][0], result["metadatas"][0],
                result["distances"][0], strict=True,
            )
        ]

    def get(self, where: Where | None = None, include_documents: bool = False,
            limit: int | None = None) -> list[Hit]:
        """Chunks matching ``where`` (all when None), with metadata and optionally text."""
        include = ["metadatas", "documents"] if include_documents else ["metadatas"]
        with self._calls():
            result = self.open().get(where=where or None, include=include, limit=limit)
        documents = result.get("documents") or [""] * len(result["ids"])
        return [
            Hit(id_, doc or "", dict(meta or {}), 0.0)
            for id_, doc, meta in zip(result["ids"], documents, result["metadatas"], strict=True)
        ]

    def count_where(self, where: Where) -> int:
        with self._calls():
            return len(self.open().get(where=where, include=[])["ids"])

    def delete(self, where: Where) -> int:
        """Delete the chunks matching ``where``; returns how many there were."""
        with self._calls():
            collection = self.open()
            ids = collection.get(where=where, include=[])["ids"]
            if ids:
                collection.delete(ids=ids)
                self.lexical.delete(ids)
                self._mark_changed(collection)
        return len(ids)

    def count(self) -> int:
        if not self.exists():
            return 0
        with self._calls():
            return int(self.open().count())

    # --- lexical index --------------------------------------------------------------------
    @property
    def lexical(self) -> LexicalIndex:
        """The collection's lexical index, opened (and reconciled with Chroma) on first use."""
        with self._lexical_lock:
            if self._lexical is None:
                index = LexicalIndex(self._lexical_folder())
                collection = self.open()
                if index.folder is None or len(index) != collection.count():
                    self._reconcile(index, collection)
                self._lexical = index
            return self._lexical

    def _mark_changed(self, collection: Any) -> None:
        """After a write: tell other readers of the collection (the server subclass does)."""

    def _follow(self) -> None:
        """Before a lexical search: catch up with writes made elsewhere (the server subclass does)."""

    def _reconcile(self, index: LexicalIndex, collection: Any) -> None:
        """Make ``index`` hold exactly the collection's chunks: add what it lacks, drop the rest.

        Runs when the index is opened and its size differs from Chroma's (a collection built
        before the index existed, a write cut short); never per query."""
        stored = set(collection.get(include=[])["ids"])
        present = index.ids()
        missing = sorted(stored - present)
        extra = present - stored
        if extra:
            index.delete(extra)
        for start in range(0, len(missing), 1000):
            batch = collection.get(ids=missing[start:start + 1000], include=["documents", "metadatas"])
            metas = [dict(m or {}) for m in batch["metadatas"]]
            index.add(batch["ids"], [indexed_text(d or "", m) for d, m in zip(batch["documents"], metas,
                                                                              strict=True)],
                      [str(m.get("origin", "")) for m in metas], [str(m.get("source", "")) for m in metas])
        if missing or extra:
            log.info("lexical index of %s: %d chunks added, %d removed to match the collection",
                     self.key, len(missing), len(extra))

    def search_lexical(self, query: str, k: int, names: Sequence[str] = ()) -> list[LexicalHit]:
        """The ``k`` best chunks by BM25 (ids and scores), restricted to sources ``names``."""
        if not self.exists():
            return []
        with self._calls():
            self._follow()
            return self.lexical.search(query, k, names)

    def get_ids(self, ids: Sequence[str]) -> tuple[list[Hit], np.ndarray]:
        """The chunks ``ids`` (in that order, missing ones left out) and their vectors."""
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        with self._calls():
            result = self.open().get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
        rows = {id_: i for i, id_ in enumerate(result["ids"])}
        order = [rows[i] for i in ids if i in rows]
        hits = [Hit(result["ids"][i], result["documents"][i] or "", dict(result["metadatas"][i] or {}), 0.0)
                for i in order]
        vectors = np.asarray(result["embeddings"], dtype=np.float32)
        return hits, (vectors[order] if len(order) else np.zeros((0, 0), dtype=np.float32))
