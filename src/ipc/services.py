"""The engine's service methods, registered on the IPC server in the engine process.

``register_engine_methods(server, evaluator)`` is the one place that says what workers
may ask of the engine. The engine's own methods are typed by the contract
(src/contract/): ``evaluate`` takes an :class:`EvaluateRequest` and streams
:class:`EvalEvent` s, ``models`` answers :class:`ModelInfo` s, ``health`` a :class:`Health`,
``tokenize`` / ``detokenize`` (src/ipc/ops.py) their requests and results. The document and
media services (src/ipc/documents.py, src/ipc/media.py) and the operations methods
(src/ipc/ops.py) are typed the same way::

    server.register_typed("embed", EmbedRequest, methods.embed)

Handlers run in the engine process and may use torch; workers never import this module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from src.contract import BackendHealth, Empty, EvalEvent, EvaluateRequest, Health, ModelInfo
from src.ipc.documents import register_document_methods
from src.ipc.media import register_media_methods
from src.ipc.ops import register_ops_methods
from src.ipc.server import IpcServer
from src.media import MediaServices

if TYPE_CHECKING:
    from src.evaluate import Evaluator


def register_engine_methods(server: IpcServer, evaluator: Evaluator, media: MediaServices | None = None) -> None:
    """health, models, evaluate (typed), the document methods of src.ipc.documents (embed,
    ingestion, sources, collections) and the speech and image methods of src.ipc.media (from
    ``media``, else built from the settings), and the operations methods of src.ipc.ops."""
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
        return Health(ready=True, model=registry.default.name, models=registry.names,
                      active_requests=registry.active_requests, backends=backends)

    def models(_: Any) -> list[ModelInfo]:
        return registry.listing()

    def evaluate(request: EvaluateRequest, cancel: threading.Event) -> Iterator[EvalEvent]:
        for chunk in evaluator.evaluate(request.params, cancel, request.requester, request.messages,
                                        request.json_schema, request.strict_max_new_tokens):
            yield chunk.event()

    server.register_typed("health", Empty, health)
    server.register_typed("models", Empty, models)
    server.register_typed_stream("evaluate", EvaluateRequest, evaluate)
    register_document_methods(server, evaluator.docs)
    register_media_methods(server, media or MediaServices.from_settings(evaluator.settings))
    register_ops_methods(server, evaluator)  # tokenize, metrics, rate limits: src/ipc/ops.py
