"""Start-up: load the engine, then run the CLI or serve the UI and the OpenAI API."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from src.engine.registry import build_registry
from src.errors import VectorStoreUnavailableError
from src.evaluate import Evaluator
from src.media import MediaServices
from src.metrics import EngineMetrics
from src.settings import Settings

if TYPE_CHECKING:
    from src.docqa.service import DocumentService

log = logging.getLogger(__name__)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.DEBUG if settings.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "urllib3", "httpcore", "chromadb.telemetry"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build_documents(settings: Settings, metrics: EngineMetrics | None = None) -> DocumentService | None:
    """The document service (None when no collection is offered), with user_path ingested;
    ``metrics`` counts its ingestions (those of --user_path at start-up too)."""
    from src.docqa.collections import NO_COLLECTION_MODES
    from src.docqa.service import DocumentService

    if all(mode in NO_COLLECTION_MODES for mode in settings.langchain_modes):
        return None
    docs = DocumentService.from_settings(settings, observer=metrics)
    paths = dict(settings.langchain_mode_paths)
    if settings.user_path:
        paths["UserData"] = settings.user_path
    for collection, path in paths.items():
        if collection in settings.langchain_modes:
            docs.sync_user_path(path, collection)
        else:
            log.warning("not ingesting %s: %r is not in --langchain_modes", path, collection)
    return docs


def build_evaluator(settings: Settings) -> Evaluator:
    """Open the document store (first: an unreachable --chroma_server stops start-up before
    any model loads), then load the model(s) and start their backends. One
    :class:`EngineMetrics` observes the answers and the ingestions."""
    metrics = EngineMetrics()
    docs = build_documents(settings, metrics)
    return Evaluator(settings, build_registry(settings), docs, observer=metrics)


def main(settings: Settings) -> int:
    """Run the product as the flags say; returns the process exit code."""
    configure_logging(settings)
    media = MediaServices.from_settings(settings)  # first: ingestion at start transcribes audio
    try:
        evaluator = build_evaluator(settings)
    except VectorStoreUnavailableError as exc:
        log.error("cannot start: %s", exc.message)
        return 1
    if settings.cli:
        from src.cli import run_cli

        try:
            return run_cli(evaluator, sys.stdin, sys.stdout)
        finally:
            evaluator.registry.shutdown()
    from src.serve import serve

    return serve(settings, evaluator, media)
