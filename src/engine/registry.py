"""The model registry: model name -> Backend, built once from Settings.

evaluate(), the Gradio UI and the IPC services depend on this and on the Backend
interface only. A request picks its model by name (h2oGPT's ``visible_models``, the
OpenAI ``model`` field) or by its index in the listing; none picks the first.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from src.engine.backend import Backend
from src.errors import UnknownModelError
from src.settings import Settings


class ModelRegistry:
    """The served models in listing order; the first is the default."""

    def __init__(self, backends: Sequence[Backend]) -> None:
        if not backends:
            raise ValueError("a registry needs at least one model")
        self._backends: dict[str, Backend] = {}
        for backend in backends:
            if backend.name in self._backends:
                raise ValueError(f"two models are named {backend.name!r}")
            self._backends[backend.name] = backend
        self.created = int(time.time())

    @property
    def names(self) -> list[str]:
        return list(self._backends)

    @property
    def default(self) -> Backend:
        return next(iter(self._backends.values()))

    def __iter__(self) -> Iterator[Backend]:
        return iter(self._backends.values())

    def __len__(self) -> int:
        return len(self._backends)

    def get(self, choice: str | int | Sequence[str | int] | None = None) -> Backend:
        """The backend for a model name or index (or the first of a list); None: the default."""
        if isinstance(choice, list | tuple):
            choice = choice[0] if choice else None
        if choice is None or choice == "":
            return self.default
        if isinstance(choice, int) or (isinstance(choice, str) and choice.isdigit()
                                       and choice not in self._backends):
            index = int(choice)
            if 0 <= index < len(self._backends):
                return list(self._backends.values())[index]
            raise UnknownModelError(f"there is no model number {index}; {len(self)} are served")
        if choice in self._backends:
            return self._backends[choice]
        raise UnknownModelError(f"the model {choice!r} does not exist; served: {', '.join(self.names)}")

    def listing(self) -> list[dict[str, Any]]:
        """The models as /v1/models lists them (plus each backend's own info)."""
        return [{"id": b.name, "created": self.created, "owned_by": "h2oGPT", **b.info()} for b in self]

    @property
    def active_requests(self) -> int:
        return sum(b.active_requests for b in self)

    def shutdown(self) -> None:
        for backend in self:
            backend.shutdown()


def build_registry(settings: Settings) -> ModelRegistry:
    """Load the model(s) the flags name and start their backends: the chat model first (the
    default), then each of --visible_vision_models."""
    from src.engine.loader import load_model
    from src.engine.transformers_backend import TransformersBackend

    loaded = load_model(settings)
    backend = TransformersBackend(
        loaded, max_queue_time=settings.max_queue_time or None,
        concurrency=settings.concurrency_count, kv_cache_gb=settings.kv_cache_gb,
    )
    backends: list[Backend] = [backend]
    if settings.visible_vision_models:
        from src.engine.vision_backend import load_vision_backend

        backends.extend(load_vision_backend(path, settings) for path in settings.visible_vision_models)
    return ModelRegistry(backends)
