"""The engine's service methods, registered on the IPC server in the engine process.

``register_engine_methods(server, evaluator)`` is the one place that says what workers
may ask of the engine. To add a service (for example document Q&A's ``embed``), write a
handler that takes the args dict and returns msgpack-able data, and register it here::

    server.register("embed", lambda args: {"data": embedder.embed(args["input"])})

then call it from a router with ``await engine_client.call("embed", {"input": texts})``.
Handlers run in the engine process and may use torch; workers never import this module.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from src.ipc.documents import register_document_methods, requester
from src.ipc.ops import register_ops_methods
from src.ipc.server import IpcServer
from src.params import EvalParams

if TYPE_CHECKING:
    from src.evaluate import Evaluator


def register_engine_methods(server: IpcServer, evaluator: Evaluator) -> None:
    """health, models, count_tokens (calls), evaluate (stream of EvalChunk dicts) and the
    document methods of src.ipc.documents (embed, ingestion, sources, collections).

    ``evaluate`` takes the EvalParams fields plus ``requester`` ({name, scratch}): who
    asks, so that personal collections (MyData) are theirs.
    """
    engine = evaluator.engine
    started = int(time.time())

    def health(args: dict[str, Any]) -> dict[str, Any]:
        return {"ready": True, "model": engine.model_name, "active_requests": engine.active_requests}

    def models(args: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": engine.model_name, "created": started, "owned_by": "h2oGPT"}]

    def count_tokens(args: dict[str, Any]) -> int:
        return engine.count_tokens(str(args.get("text", "")))

    def evaluate(args: dict[str, Any], cancel: threading.Event) -> Iterator[dict[str, Any]]:
        user = requester(args)
        params = EvalParams.model_validate({k: v for k, v in args.items() if k != "requester"})
        for chunk in evaluator.evaluate(params, cancel, user):
            yield dataclasses.asdict(chunk)

    server.register("health", health)
    server.register("models", models)
    server.register("count_tokens", count_tokens)
    server.register_stream("evaluate", evaluate)
    register_document_methods(server, evaluator.docs)
    register_ops_methods(server, evaluator)  # tokenize, metrics, rate limits: src/ipc/ops.py
