"""Serve mode: start the OpenAI API and the Gradio UI over one evaluator, stop them on a signal.

Each front-end module exposes ``start(settings, evaluator) -> Service``; a Service has
``stop()``. Ctrl-C or SIGTERM stops every service (and the API's worker processes)
before the process exits.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from src.evaluate import Evaluator
from src.settings import Settings

if TYPE_CHECKING:
    from src.media import MediaServices

log = logging.getLogger(__name__)


class Service(Protocol):
    def stop(self) -> None: ...


def _starters(settings: Settings) -> list[tuple[str, Callable[..., Service]]]:
    starters: list[tuple[str, Callable[..., Service]]] = []
    if settings.openai_server:
        from src.openai_service import start as start_openai

        starters.append(("OpenAI API", start_openai))
    if settings.gradio:
        from gradio_ui.launcher import start as start_gradio

        starters.append(("Gradio UI", start_gradio))
    return starters


def freeze_startup_heap() -> None:
    """Move every object alive after start-up out of the garbage collector's reach.

    The engine process holds millions of long-lived objects (models, tokenizers, Chroma,
    Gradio). A full collection walks all of them: about 0.3 s here, paid by whatever request
    triggers it, and faster-whisper forces one in every audio decode. Frozen, they are
    skipped; objects made later are collected as usual.
    """
    gc.collect()
    gc.freeze()


def serve(settings: Settings, evaluator: Evaluator, media: MediaServices | None = None) -> int:
    """Start the enabled front-ends and block until SIGINT/SIGTERM; returns the exit code."""
    starters = _starters(settings)
    if not starters:
        log.error("nothing to serve: --openai_server and --gradio are both False (try --cli=True)")
        return 2
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    services: list[Service] = []
    try:
        for name, start in starters:
            services.append(start(settings, evaluator, media=media))
            log.info("%s started", name)
        freeze_startup_heap()
        while not done.wait(0.5):
            pass
    finally:
        for service in reversed(services):
            try:
                service.stop()
            except Exception:  # keep stopping the others
                log.exception("error while stopping a service")
        evaluator.registry.shutdown()
    return 0
