"""The engine's document service methods (embeddings, ingestion, collections) for the API.

Registered by :func:`src.ipc.services.register_engine_methods`; each handler takes the
args dict of an IPC call and returns msgpack-able data. ``requester`` in the args is who
asks, as the API worker established it (``{"name": str, "scratch": bool}``); workers are
trusted, users never talk to this socket. Errors are the DocumentService's
:class:`~src.docqa.collections.DocQAError` subclasses, which cross the socket by class
name and are mapped onto HTTP statuses by openai_server/errors.py.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.docqa.collections import DocumentsDisabledError, Requester, Scope
from src.ipc.server import IpcServer

if TYPE_CHECKING:
    from src.docqa.service import DocumentService

log = logging.getLogger(__name__)


def requester(args: dict[str, Any]) -> Requester | None:
    """The Requester of an IPC call's ``requester`` entry (None: the server itself)."""
    raw = args.get("requester")
    if not raw:
        return None
    name = str(raw.get("name") or "")
    if not name:
        raise ValueError("requester.name must not be empty")
    return Requester(name, scratch=bool(raw.get("scratch", False)))


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

    def embed(self, args: dict[str, Any]) -> dict[str, Any]:
        """{texts} or {token_ids} -> {model, dimension, tokens, data: little-endian float32
        bytes, row-major}. Token ids are the embedding model's own (vLLM's meaning), read
        as their text. An input over the model's window is refused with the numbers."""
        if args.get("token_ids") is not None:
            texts = self.docs.embedder.decode([[int(i) for i in ids] for ids in args["token_ids"]])
        else:
            texts = [str(t) for t in args.get("texts") or []]
        self.docs.embedder.check_window(texts)
        vectors, tokens = self.docs.embed(texts)
        return {
            "model": embedding_model_name(self.docs),
            "dimension": int(vectors.shape[1]),
            "tokens": int(tokens),
            "data": vectors.astype("<f4").tobytes(),
        }

    def add_files(self, args: dict[str, Any]) -> dict[str, Any]:
        """{collection, files: [{filename, data}], chunk?, chunk_size?} -> an ingestion report."""
        user = requester(args)
        with tempfile.TemporaryDirectory(prefix="h2ogpt-upload-") as tmp:
            pairs = []
            for i, item in enumerate(args.get("files") or []):
                name = upload_name(item.get("filename", ""))
                folder = Path(tmp) / str(i)  # same-named uploads must not overwrite each other
                folder.mkdir()
                path = folder / name
                path.write_bytes(bytes(item.get("data") or b""))
                pairs.append((path, name))
            report = self.docs.add_files(
                str(args["collection"]), pairs, user, chunk=bool(args.get("chunk", True)),
                chunk_size=args.get("chunk_size") or None,
            )
        return report.as_dict()

    def add_text(self, args: dict[str, Any]) -> dict[str, Any]:
        """{collection, text, source, chunk?, chunk_size?} -> an ingestion report."""
        report = self.docs.add_text(
            str(args["collection"]), str(args["text"]), upload_name(args["source"]), requester(args),
            chunk=bool(args.get("chunk", True)), chunk_size=args.get("chunk_size") or None,
        )
        return report.as_dict()

    def list_sources(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        sources = self.docs.list_sources(str(args["collection"]), requester(args))
        return [{"source": s.source, "chunks": s.chunks, "hash": s.hash, "ingested_at": s.ingested_at}
                for s in sources]

    def delete_sources(self, args: dict[str, Any]) -> list[str]:
        names = [str(s) for s in args.get("sources") or []]
        return self.docs.delete_sources(str(args["collection"]), names, requester(args))

    def rerank(self, args: dict[str, Any]) -> dict[str, Any]:
        """{query, documents} -> {scores, model, tokens} (src.docqa.service.DocumentService.rerank)."""
        scores, model, tokens = self.docs.rerank(str(args["query"]), [str(d) for d in args["documents"]])
        name = model if not Path(model).is_absolute() else Path(model).name
        return {"scores": scores, "model": name, "tokens": tokens}

    def list_collections(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"name": c.name, "scope": c.scope, "builtin": c.builtin}
                for c in self.docs.list_collections(requester(args))]

    def create_collection(self, args: dict[str, Any]) -> dict[str, Any]:
        scope: Scope = "shared" if args.get("scope") == "shared" else "personal"
        info = self.docs.create_collection(str(args["name"]), scope, requester(args))
        return {"name": info.name, "scope": info.scope, "builtin": info.builtin}

    def delete_collection(self, args: dict[str, Any]) -> dict[str, Any]:
        self.docs.delete_collection(str(args["name"]), requester(args))
        return {"name": str(args["name"]), "deleted": True}


def register_document_methods(server: IpcServer, docs: DocumentService | None) -> None:
    """embed, add_files, add_text, list_sources, delete_sources and the collection calls."""
    methods = DocumentMethods(docs)
    for name in ("embed", "rerank", "add_files", "add_text", "list_sources", "delete_sources",
                 "list_collections", "create_collection", "delete_collection"):
        server.register(name, getattr(methods, name))
