"""The engine's service methods, registered on the IPC server in the engine process.

``register_engine_methods(server, evaluator)`` is the one place that says what workers
may ask of the engine. The engine's own methods are typed by the contract
(src/contract/): ``evaluate`` takes an :class:`EvaluateRequest` and streams
:class:`EvalEvent` s, ``models`` answers :class:`ModelInfo` s, ``health`` a :class:`Health`,
``stop_generation`` stops a requester's running answers (src/ipc/stopping.py),
``tokenize`` / ``detokenize`` (src/ipc/ops.py) their requests and results. The document and
media services (src/ipc/documents.py, src/ipc/media.py) and the operations methods
(src/ipc/ops.py) and the model endpoints (src/ipc/models.py) are typed the same way::

    server.register_typed("embed", EmbedRequest, methods.embed)

Handlers run in the engine process and may use torch; workers never import this module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from src.contract import (
    BackendHealth,
    Empty,
    EvalEvent,
    EvaluateRequest,
    Health,
    ModelInfo,
    Stopped,
    StopRequest,
)
from src.ipc.documents import register_document_methods
from src.ipc.media import register_media_methods
from src.ipc.models import register_model_methods
from src.ipc.moderation import register_moderation_methods
from src.ipc.ops import register_ops_methods
from src.ipc.server import IpcServer
from src.ipc.stopping import RunningAnswers
from src.media import MediaServices
from src.moderation import build_moderator

if TYPE_CHECKING:
    from src.evaluate import Evaluator


def register_engine_methods(server: IpcServer, evaluator: Evaluator, media: MediaServices | None = None) -> None:
    """health, models, evaluate (typed), the document methods of src.ipc.documents (embed,
    ingestion, sources, collections) and the speech and image methods of src.ipc.media (from
    ``media``, else built from the settings), the operations methods of src.ipc.ops and
    ``moderate`` (src.ipc.moderation)."""
    registry = evaluator.registry

    def health(_: Any) -> Health:
        """Ready once loaded; ``backends``: each model's state (a remote one is probed now:
        ``up`` or ``down``, with the last error)."""
        backends = []
        for backend in registry:
            state = backend.health()
            backends.append(BackendHealth(model=backend.name, backend=backend.describe().backend,
                                          state=state.get("state", "up"),  # type: ignore[arg-type]
                                          error=state.get("error")))
        main = registry.main
        return Health(ready=True, model=main.name if main is not None else "", models=registry.names,
                      active_requests=registry.active_requests, backends=backends)

    def models(_: Any) -> list[ModelInfo]:
        return registry.listing()

    running = RunningAnswers()

    def evaluate(request: EvaluateRequest, cancel: threading.Event) -> Iterator[EvalEvent]:
        name = request.requester.name if request.requester is not None else ""
        with running.track(name, cancel) as stop:
            for chunk in evaluator.evaluate(request.params, stop, request.requester, request.messages,
                                            request.json_schema, request.strict_max_new_tokens):
                yield chunk.event()

    def stop_generation(request: StopRequest) -> Stopped:
        """Stop the requester's running answers (src/ipc/stopping.py)."""
        return Stopped(stopped=running.stop(request.requester.name))

    server.register_typed("health", Empty, health)
    server.register_typed("models", Empty, models)
    server.register_typed_stream("evaluate", EvaluateRequest, evaluate)
    server.register_typed("stop_generation", StopRequest, stop_generation)
    register_document_methods(server, evaluator.docs)
    register_media_methods(server, media or MediaServices.from_settings(evaluator.settings))
    register_ops_methods(server, evaluator)  # tokenize, metrics, rate limits: src/ipc/ops.py
    register_model_methods(server, evaluator)  # list, load, unload models: src/ipc/models.py
    register_moderation_methods(server, build_moderator(evaluator.settings, evaluator.docs))
