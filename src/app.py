"""Start-up: load the engine, then run the CLI or serve the UI and the OpenAI API."""

from __future__ import annotations

import logging
import sys

from src.engine.loader import load_model
from src.engine.scheduler import Engine
from src.evaluate import Evaluator
from src.settings import Settings

log = logging.getLogger(__name__)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.DEBUG if settings.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "urllib3", "httpcore", "chromadb.telemetry"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build_evaluator(settings: Settings) -> Evaluator:
    """Load the model and start the engine's generation thread."""
    loaded = load_model(settings)
    engine = Engine(loaded, max_queue_time=settings.max_queue_time or None)
    return Evaluator(settings, engine)


def main(settings: Settings) -> int:
    """Run the product as the flags say; returns the process exit code."""
    configure_logging(settings)
    evaluator = build_evaluator(settings)
    if settings.cli:
        from src.cli import run_cli

        return run_cli(evaluator, sys.stdin, sys.stdout)
    from src.serve import serve

    return serve(settings, evaluator)
