"""Fixtures for the document Q&A tests: the real embedding model (loaded once) and services in tmp dirs."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path


@functools.cache
def shared_embedder():
    """The packaged all-MiniLM-L6-v2, loaded once per test process."""
    from src.docqa.embeddings import Embedder

    return Embedder().load()


def make_service(root: Path, **kwargs):
    from src.docqa.service import DocumentService

    return DocumentService(shared_embedder(), db_root=root, **kwargs)


def service_in(tmp_path: Path) -> Iterator[object]:
    """A DocumentService over a fresh db_root in a temp dir (use with ``yield from`` in a fixture)."""
    service = make_service(tmp_path / "db")
    yield service
    service.close()
