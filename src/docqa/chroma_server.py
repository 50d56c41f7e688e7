"""Collections in a Chroma server (``--chroma_server=http://HOST:PORT``, e.g. ``chroma run``).

Every instance pointed at one server shares its collections. All the state two instances
must share lives in Chroma itself: the chunks and, in each chunk's metadata, its origin,
content hash, chunk count and ingestion time (what listing, dedupe and user_path sync
read); in the collection's metadata, the embedding model that built it. Nothing about a
server collection is kept on local disk.

Our names map onto the server's one namespace deterministically
(:func:`src.docqa.collections.server_collection_name`)::

    UserData (shared)               -> h2ogpt.shared.UserData
    MyData of user alice (personal) -> h2ogpt.user.alice.MyData

Scratch users' personal collections (anonymous UI sessions) stay in a local temporary
folder: they belong to one process and are removed when it stops.

A server that cannot be reached raises :class:`VectorStoreUnavailableError` (503 on the
API), at start-up and on any later call.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from src.docqa.store import ChromaStore, StoreError
from src.errors import VectorStoreUnavailableError

log = logging.getLogger(__name__)

#: Key of the collection metadata that changes on every write (followed by lexical indexes).
GENERATION = "h2ogpt_generation"


class ChromaServer:
    """One Chroma server: a lazily made ``chromadb.HttpClient`` shared by every store."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
            raise ValueError(f"not a Chroma server URL (http://HOST:PORT): {url!r}")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port
        self.ssl = parts.scheme == "https"
        self._client: Any = None
        self._lock = threading.Lock()

    def _unreachable(self, exc: BaseException) -> VectorStoreUnavailableError:
        return VectorStoreUnavailableError(
            f"the Chroma server at {self.url} (--chroma_server) cannot be reached: {exc}"
        )

    @contextmanager
    def reachable(self) -> Iterator[None]:
        """Turns a failed connection to the server into VectorStoreUnavailableError."""
        import httpx

        try:
            yield
        except (httpx.TransportError, ConnectionError) as exc:
            raise self._unreachable(exc) from exc

    def client(self) -> Any:
        """The HttpClient, connected on first use (telemetry off, no embedding function)."""
        with self._lock:
            if self._client is None:
                import chromadb
                from chromadb.config import Settings as ChromaSettings

                try:
                    with self.reachable():
                        self._client = chromadb.HttpClient(
                            host=self.host, port=self.port, ssl=self.ssl,
                            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
                        )
                except ValueError as exc:  # chromadb's "Could not connect to a Chroma server"
                    raise self._unreachable(exc) from exc
            return self._client

    def connect(self) -> ChromaServer:
        """Check the server answers now (start-up); raises VectorStoreUnavailableError."""
        client = self.client()
        with self.reachable():
            client.heartbeat()
        log.info("collections are kept in the Chroma server at %s", self.url)
        return self

    def names(self) -> list[str]:
        """Every collection name on the server (ours and any others)."""
        client = self.client()
        with self.reachable():
            return [c.name for c in client.list_collections()]


class ServerChromaStore(ChromaStore):
    """A :class:`ChromaStore` whose collection lives in a Chroma server.

    The collection object is fetched afresh for each operation (one small request), so a
    collection deleted or re-created by another instance is never used stale.
    """

    def __init__(self, server: ChromaServer, chroma_name: str, name: str, embedding_model: str) -> None:
        self.server = server
        self.chroma_name = chroma_name
        self.name = name
        self.embedding_model = embedding_model
        self._collection = None
        self._lock = threading.Lock()
        self._lexical = None
        self._lexical_lock = threading.Lock()

    @property
    def key(self) -> str:
        return f"{self.server.url}/{self.chroma_name}"

    def _lexical_folder(self) -> None:
        """A server collection's lexical index is kept in memory, derived from the server."""
        return None

    def _mark_changed(self, collection: Any) -> None:
        """Write a new generation mark into the collection's metadata: the other instances
        sharing the server see it and bring their lexical index up to date."""
        generation = uuid.uuid4().hex
        collection.modify(metadata={**(collection.metadata or {}), GENERATION: generation})
        if self._lexical is not None:
            self._lexical.generation = generation

    def _follow(self) -> None:
        collection = self._find()
        if collection is None:
            return
        index = self.lexical
        generation = str((collection.metadata or {}).get(GENERATION, ""))
        if generation != index.generation:
            with self._lexical_lock:
                self._reconcile(index, collection)
                index.generation = generation

    @contextmanager
    def _calls(self) -> Iterator[None]:
        with self.server.reachable():
            yield

    def _find(self) -> Any:
        """The collection on the server, or None when there is none."""
        from chromadb.errors import NotFoundError

        client = self.server.client()
        with self.server.reachable():
            try:
                return client.get_collection(self.chroma_name, embedding_function=None)
            except NotFoundError:
                return None

    def exists(self) -> bool:
        return self._find() is not None

    def open(self, create: bool = True) -> Any:
        if create:
            client = self.server.client()
            with self.server.reachable():
                return self._get_or_create(client, self.chroma_name)
        collection = self._find()
        if collection is None:
            raise StoreError(f"collection {self.name!r} is not on {self.server.url}")
        return self._checked(collection)

    def drop(self) -> None:
        from chromadb.errors import NotFoundError

        client = self.server.client()
        self._lexical = None
        with self._lock, self.server.reachable():
            try:
                client.delete_collection(self.chroma_name)
            except NotFoundError:  # another instance deleted it first
                log.debug("collection %s was already gone", self.chroma_name)
