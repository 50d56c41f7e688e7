"""Document actions shared by the UI's document panel and the API's document endpoints.

Everything goes through the process's :class:`src.docqa.service.DocumentService`; this
module only decides *who* asks (a logged-in user, or a per-session scratch user for
visitors, named after --guest_name) and shapes the results for Gradio.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder, is_in_or_equal

from gradio_ui.context import BadRequest, UIContext
from src.docqa.collections import NO_COLLECTION_MODES, DocumentsDisabledError, Requester
from src.docqa.ingest import IngestReport

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_COLLECTION = "MyData"


def requester(ctx: UIContext, request: gr.Request | None) -> Requester:
    """Who asks: the logged-in user, else a scratch user private to this browser/client session."""
    username = getattr(request, "username", None) if request is not None else None
    if username:
        return Requester(str(username))
    session = getattr(request, "session_hash", None) or "anonymous"
    return Requester(f"{ctx.access.guest_name}-{str(session)[:16]}", scratch=True)


def report_dict(report: IngestReport) -> dict[str, Any]:
    """An IngestReport for the Gradio API: per-file results, the added source names, a summary."""
    data = report.as_dict()
    sources = [f["source"] for f in data["files"] if f["status"] != "failed"]
    return {"files": data["files"], "sources": sources, "summary": data["summary"]}


class Documents:
    """The document operations, with the checks both front-ends need."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx

    @property
    def service(self) -> Any:
        if self.ctx.documents is None:
            raise DocumentsDisabledError(
                "document Q&A is off on this server (every --langchain_modes entry is LLM or Disabled)"
            )
        return self.ctx.documents

    def upload_collection(self, langchain_mode: str | None) -> str:
        """Where an upload goes: the chosen collection, or MyData when the choice is LLM."""
        if not langchain_mode or langchain_mode in NO_COLLECTION_MODES:
            return DEFAULT_UPLOAD_COLLECTION
        return langchain_mode

    def collections(self, user: Requester) -> list[str]:
        names = [c.name for c in self.service.list_collections(user)]
        modes = [m for m in self.ctx.settings.langchain_modes if m in NO_COLLECTION_MODES]
        return names + modes

    def add_file(self, path: str, name: str, langchain_mode: str, user: Requester,
                 chunk: bool = True, chunk_size: int | None = None) -> dict[str, Any]:
        """Ingest one uploaded file (it must lie in Gradio's upload folder)."""
        upload_root = get_upload_folder()
        if not path or not Path(path).is_file() or not is_in_or_equal(path, upload_root):
            raise BadRequest("file must be a path returned by /upload_api")
        report = self.service.add_files(langchain_mode, [(path, name or Path(path).name)], user,
                                        chunk=chunk, chunk_size=chunk_size or None)
        return report_dict(report)

    def add_text(self, text: str, source: str, langchain_mode: str, user: Requester,
                 chunk: bool = True, chunk_size: int | None = None) -> dict[str, Any]:
        if not text.strip():
            raise BadRequest("text is empty")
        report = self.service.add_text(langchain_mode, text, source or "text", user,
                                       chunk=chunk, chunk_size=chunk_size or None)
        return report_dict(report)

    def sources(self, langchain_mode: str, user: Requester) -> list[str]:
        if langchain_mode in NO_COLLECTION_MODES:
            return []
        return [s.source for s in self.service.list_sources(langchain_mode, user)]

    def delete_sources(self, sources: list[str], langchain_mode: str, user: Requester) -> list[str]:
        if not sources:
            raise BadRequest("no sources given")
        return list(self.service.delete_sources(langchain_mode, sources, user))

    def document(self, source: str, langchain_mode: str, user: Requester) -> dict[str, Any]:
        """The chunks of one source, in document order."""
        hits = self.service.chunks(langchain_mode, user, [source])
        if not hits:
            raise BadRequest(f"no source {source!r} in {langchain_mode}")
        return {
            "source": source,
            "chunks": [
                {"content": h.content, "page": h.metadata.get("page"),
                 "chunk_id": h.metadata.get("chunk_id")}
                for h in hits
            ],
        }

    def rerank(self, query: str, documents: list[str], top_n: int = 0) -> dict[str, Any]:
        """Documents scored against ``query``, best first, in /v1/rerank's shape."""
        if not isinstance(query, str) or not query.strip():
            raise BadRequest("query must be a non-empty string")
        if isinstance(documents, str):
            documents = [documents]
        if not documents or not all(isinstance(d, str) for d in documents):
            raise BadRequest("documents must be a non-empty list of strings")
        scores, model, tokens = self.service.rerank(query, list(documents))
        order = sorted(range(len(documents)), key=lambda i: -scores[i])[: top_n or len(documents)]
        return {"model": Path(model).name if Path(model).is_absolute() else model,
                "results": [{"index": i, "relevance_score": scores[i], "document": {"text": documents[i]}}
                            for i in order],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def create_collection(self, name: str, scope: str, user: Requester) -> str:
        if scope not in ("shared", "personal"):
            raise BadRequest("scope must be 'shared' or 'personal'")
        return str(self.service.create_collection(name.strip(), scope, user).name)
