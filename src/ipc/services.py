"""The engine's service methods, registered on the IPC server in the engine process.

``register_engine_methods(server, evaluator)`` is the one place that says what workers
may ask of the engine. To add a service (for example document Q&A's ``embed``), write a
handler that takes the args dict and returns msgpack-able data, and register it here::

    server.register("embed", lambda args: {"data": embedder.embed(args["input"])})

then call it from a router with ``await engine_client.call("embed", {"input": texts})``.
Handlers run in the engine process and may use torch; workers never import this module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from src.ipc.documents import register_document_methods, requester
from src.ipc.media import register_media_methods
from src.ipc.ops import register_ops_methods
from src.ipc.server import IpcServer
from src.media import MediaServices
from src.params import EvalParams

if TYPE_CHECKING:
    from src.evaluate import Evaluator


def register_engine_methods(server: IpcServer, evaluator: Evaluator, media: MediaServices | None = None) -> None:
    """health, models (calls), evaluate (stream of EvalChunk dicts), the
    document methods of src.ipc.documents (embed, ingestion, sources, collections) and the
    speech and image methods of src.ipc.media (from ``media``, else built from the settings).

    ``evaluate`` takes the EvalParams fields plus ``requester`` ({name, scratch}): who
    asks, so that personal collections (MyData) are theirs.
    """
    registry = evaluator.registry

    def health(args: dict[str, Any]) -> dict[str, Any]:
        """Ready once loaded; ``backends``: each model's state (a remote one is probed now:
        ``up`` or ``down``, with the last error)."""
        backends = [{"model": b.name, "backend": b.info().get("backend"), **b.health()} for b in registry]
        return {"ready": True, "model": registry.default.name, "models": registry.names,
                "active_requests": registry.active_requests, "backends": backends}

    def models(args: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": m["id"], "created": m["created"], "owned_by": m["owned_by"],
                 "max_model_len": m["context_window"]} for m in registry.listing()]

    def evaluate(args: dict[str, Any], cancel: threading.Event) -> Iterator[dict[str, Any]]:
        user = requester(args)
        params = EvalParams.model_validate({k: v for k, v in args.items() if k != "requester"})
        for chunk in evaluator.evaluate(params, cancel, user):
            yield vars(chunk)  # shallow: its lists hold plain data already (asdict deep-copies)

    server.register("health", health)
    server.register("models", models)
    server.register_stream("evaluate", evaluate)
    register_document_methods(server, evaluator.docs)
    register_media_methods(server, media or MediaServices.from_settings(evaluator.settings))
    register_ops_methods(server, evaluator)  # tokenize, metrics, rate limits: src/ipc/ops.py
