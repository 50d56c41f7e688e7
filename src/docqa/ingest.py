"""Ingestion: file -> documents -> chunks -> vectors -> Chroma, idempotent and crash-safe.

Each chunk's metadata holds ``origin`` (the file or upload name that was ingested),
``source`` (the origin, or ``<archive>/<member>`` for an archive member), ``page``,
``chunk_id``, ``n_chunks``, ``hash`` (sha256 of the origin's bytes) and ``ingested_at``.

Chunk ids are deterministic (origin, hash, index) and written with upsert, and a file
counts as done only when all its ``n_chunks`` chunks are present. So a run killed half
way leaves a usable collection, and running it again completes the file without
duplicates. A changed file's new chunks are written before its old ones are deleted.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.documents import Document

from src.docqa.archives import extracted
from src.docqa.embeddings import Embedder
from src.docqa.loaders import LoadError, is_archive, load_file
from src.docqa.splitting import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    Window,
    indexed_text,
    split_documents,
)
from src.docqa.store import ChromaStore

if TYPE_CHECKING:
    from src.metrics import IngestObserver

log = logging.getLogger(__name__)

Status = Literal["added", "updated", "skipped", "failed"]
EMBED_BATCH = 256  # chunks embedded and written per step
LOAD_WORKERS = 4  # threads hashing and loading files ahead of the embedding


@dataclass
class FileReport:
    """What happened to one file (or archive member): status, chunks written, and why it failed."""

    source: str
    status: Status
    chunks: int = 0
    reason: str = ""


@dataclass
class IngestReport:
    """The outcome of one ingestion call, file by file."""

    files: list[FileReport] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files)

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "failed"]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the APIs: per-file results, removed sources and the summary."""
        return {
            "files": [{"source": f.source, "status": f.status, "chunks": f.chunks, "reason": f.reason}
                      for f in self.files],
            "removed": list(self.removed),
            "summary": self.summary(),
        }

    def summary(self) -> str:
        """One line: counts per status, chunks written, removed files."""
        text = (
            f"{self.count('added')} added, {self.count('updated')} updated, "
            f"{self.count('skipped')} unchanged, {self.count('failed')} failed, "
            f"{self.chunks} chunks written"
        )
        if self.removed:
            text += f", {len(self.removed)} removed"
        return text

    def extend(self, other: IngestReport) -> None:
        self.files.extend(other.files)
        self.removed.extend(other.removed)


@dataclass
class _Loaded:
    """A file read and split by a loader thread: its chunks, or its final report (skipped, failed)."""

    origin: str
    digest: str
    chunks: list[Document] = field(default_factory=list)
    failures: list[FileReport] = field(default_factory=list)
    done: list[FileReport] | None = None


def file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def chunk_id(origin: str, digest: str, index: int) -> str:
    return f"{hashlib.sha1(origin.encode()).hexdigest()[:16]}-{digest[:16]}-{index:06d}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ingestor:
    """Writes files into a :class:`ChromaStore`; one writer per store at a time."""

    def __init__(self, embedder: Embedder, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 observer: IngestObserver | None = None,
                 chunk_overlap: int = DEFAULT_CHUNK_OVERLAP) -> None:
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.observer = observer  # sees every report (src/metrics.py)
        self.chunk_overlap = chunk_overlap
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @property
    def window(self) -> Window:
        """What the embedding model reads of one input (chunks are cut to fit it whole)."""
        e = self.embedder
        return Window(e.window, e.special_tokens, e.count_tokens, e.offsets)

    def _lock(self, store: ChromaStore) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(store.key, threading.Lock())

    # --- public -------------------------------------------------------------------------
    def ingest_files(
        self,
        store: ChromaStore,
        files: Iterable[tuple[str | Path, str]],
        chunk: bool = True,
        chunk_size: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> IngestReport:
        """Ingest ``(path on disk, source name)`` pairs; a failing file never stops the others.

        Files are hashed, checked against the store, loaded (parsed, OCR'd) and split by
        ``LOAD_WORKERS`` threads, a few files ahead of the one being embedded and written, so
        reading and splitting overlap embedding; results keep the order of ``files``."""
        report = IngestReport()
        pending: deque[tuple[str, Future[_Loaded]]] = deque()
        items = iter(files)
        with ThreadPoolExecutor(max_workers=LOAD_WORKERS, thread_name_prefix="ingest-load") as pool:
            def submit() -> bool:
                item = next(items, None)
                if item is None:
                    return False
                pending.append((item[1], pool.submit(self._prepare, store, Path(item[0]), item[1], chunk, chunk_size)))
                return True

            while len(pending) < 2 * LOAD_WORKERS and submit():
                pass
            while pending:
                source, future = pending.popleft()
                submit()
                try:
                    report.files.extend(self._commit(store, future.result()))
                except OSError as exc:
                    report.files.append(FileReport(source, "failed", reason=f"cannot read file: {exc}"))
                if progress is not None:
                    progress(source)
        for failed in report.failed:
            log.warning("not ingested: %s: %s", failed.source, failed.reason)
        return self._observed(report)

    def ingest_text(self, store: ChromaStore, text: str, source: str, chunk: bool = True,
                    chunk_size: int | None = None) -> IngestReport:
        """Ingest raw text under the name ``source`` (same dedupe and update rules as files)."""
        digest = hashlib.sha256(text.encode()).hexdigest()
        documents = [Document(text, metadata={"page": 0})] if text.strip() else []
        with self._lock(store):
            result = self._write(store, source, digest, self._split([(source, documents)], chunk, chunk_size))
        return self._observed(IngestReport(files=result))

    def _observed(self, report: IngestReport) -> IngestReport:
        if self.observer is not None:
            self.observer.observe_ingest(report)
        return report

    # --- steps --------------------------------------------------------------------------
    def is_current(self, store: ChromaStore, origin: str, digest: str) -> bool:
        """True when every chunk of this version of ``origin`` is already stored."""
        first = store.get({"$and": [{"origin": origin}, {"chunk_id": 0}, {"hash": digest}]}, limit=1)
        if not first:
            return False
        expected = int(first[0].metadata.get("n_chunks", -1))
        return store.count_where({"$and": [{"origin": origin}, {"hash": digest}]}) == expected

    def _prepare(self, store: ChromaStore, path: Path, origin: str, chunk: bool,
                 chunk_size: int | None) -> _Loaded:
        """Hash, skip when current, else load and split: the part of a file's ingestion run in
        parallel."""
        digest = file_hash(path)
        if store.exists() and self.is_current(store, origin, digest):
            return _Loaded(origin, digest, done=[FileReport(origin, "skipped")])
        failures: list[FileReport] = []
        try:
            parts = self._load(path, origin, failures)
        except LoadError as exc:
            return _Loaded(origin, digest, done=[FileReport(origin, "failed", reason=str(exc))])
        if not parts and failures:
            return _Loaded(origin, digest, done=failures)
        return _Loaded(origin, digest, chunks=self._split(parts, chunk, chunk_size), failures=failures)

    def _commit(self, store: ChromaStore, loaded: _Loaded) -> list[FileReport]:
        """Embed and write a loaded file (one writer per store)."""
        if loaded.done is not None:
            return loaded.done
        with self._lock(store):
            return self._write(store, loaded.origin, loaded.digest, loaded.chunks) + loaded.failures

    def _load(self, path: Path, origin: str, failures: list[FileReport]) -> list[tuple[str, list[Document]]]:
        if not is_archive(origin):
            return [(origin, load_file(path, origin))]
        parts = []
        with extracted(path, origin) as members:
            for member, member_path in members:
                source = f"{origin}/{member}"
                if is_archive(member):
                    failures.append(FileReport(source, "failed", reason="nested archives are not opened"))
                    continue
                try:
                    parts.append((source, load_file(member_path, member)))
                except LoadError as exc:
                    failures.append(FileReport(source, "failed", reason=str(exc)))
        return parts

    def _split(self, parts: list[tuple[str, list[Document]]], chunk: bool, chunk_size: int | None) -> list[Document]:
        """The chunks of a file's parts (each tagged with its part's ``source``)."""
        size = chunk_size or self.chunk_size
        window = self.window
        chunks: list[Document] = []
        for source, documents in parts:
            for piece in split_documents(documents, window, size, self.chunk_overlap, chunk, source):
                piece.metadata["source"] = source
                chunks.append(piece)
        return chunks

    def _write(self, store: ChromaStore, origin: str, digest: str, chunks: list[Document]) -> list[FileReport]:
        if not chunks:
            return [FileReport(origin, "failed", reason="no text found in the file")]
        existed = store.exists() and bool(store.get({"origin": origin}, limit=1))
        stamp = _now()
        ids = [chunk_id(origin, digest, i) for i in range(len(chunks))]
        metadatas = [
            {
                "origin": origin,
                "source": str(c.metadata["source"]),
                "page": int(c.metadata.get("page") or 0),
                "chunk_id": i,
                "n_chunks": len(chunks),
                "hash": digest,
                "ingested_at": stamp,
                "title": str(c.metadata.get("title") or ""),
                "section": str(c.metadata.get("section") or ""),
                **{k: float(c.metadata[k]) for k in ("start", "end") if k in c.metadata},  # audio
            }
            for i, c in enumerate(chunks)
        ]
        texts = [c.page_content for c in chunks]
        read = [indexed_text(t, m) for t, m in zip(texts, metadatas, strict=True)]
        for start in range(0, len(chunks), EMBED_BATCH):
            end = start + EMBED_BATCH
            vectors = self.embedder.embed(read[start:end])
            store.upsert(ids[start:end], vectors, texts[start:end], metadatas[start:end])
        if existed:
            store.delete({"$and": [{"origin": origin}, {"hash": {"$ne": digest}}]})
        return [FileReport(origin, "updated" if existed else "added", chunks=len(chunks))]

    def remove(self, store: ChromaStore, names: Iterable[str]) -> list[str]:
        """Delete every chunk whose origin or source is in ``names``; returns the names found."""
        removed = []
        with self._lock(store):
            for name in names:
                where = {"$or": [{"origin": name}, {"source": name}]}
                if store.exists() and store.delete(where):
                    removed.append(name)
        return removed
