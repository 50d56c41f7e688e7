"""The model endpoints' engine methods: ``model_state``, ``loadable_models``, ``load_model``,
``unload_model`` (src/engine/swap.py does the work; one line in src/ipc/services.py registers
them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from src.contract import Empty, LoadModelRequest
from src.ipc.server import IpcServer

if TYPE_CHECKING:
    from src.evaluate import Evaluator


def register_model_methods(server: IpcServer, evaluator: Evaluator) -> None:
    from src.engine.swap import ModelSwapper

    swapper = ModelSwapper(evaluator.registry, evaluator.settings)
    server.register_typed("model_state", Empty, lambda _: swapper.state())
    server.register_typed("loadable_models", Empty, lambda _: swapper.names())
    server.register_typed("load_model", LoadModelRequest, swapper.load)
    server.register_typed("unload_model", Empty, lambda _: swapper.unload())
