"""The model registry: model name -> Backend, built once from Settings.

evaluate(), the Gradio UI and the IPC services depend on this and on the Backend
interface only. A request picks its model by name (h2oGPT's ``visible_models``, the
OpenAI ``model`` field) or by its index in the listing; none picks the first.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from src.contract import ModelInfo
from src.engine.backend import Backend
from src.errors import NoModelLoadedError, UnknownModelError
from src.settings import Settings
from src.settings_model import DEFAULT_BASE_MODEL

log = logging.getLogger(__name__)

NO_MODEL = "no model is loaded: POST /v1/internal/model/load loads one"


class ModelRegistry:
    """The served models in listing order; the first is the default.

    The default model can be swapped at run time (src/engine/swap.py): :meth:`begin_swap`
    makes new requests wait (:meth:`get`) until :meth:`end_swap`; :meth:`replace` switches
    atomically; a request holds its backend with :meth:`lease` for as long as it runs, so
    :meth:`drain` shuts the old one down only once nobody uses it.
    """

    def __init__(self, backends: Sequence[Backend], defaults: dict[str, dict[str, Any]] | None = None) -> None:
        self.defaults = defaults or {}  # per-model request defaults (model_lock's prompt_type, ...)
        if not backends:
            raise ValueError("a registry needs at least one model")
        self._backends: dict[str, Backend] = {}
        for backend in backends:
            if backend.name in self._backends:
                raise ValueError(f"two models are named {backend.name!r}")
            self._backends[backend.name] = backend
        self.created = int(time.time())
        self._created = dict.fromkeys(self._backends, self.created)
        self._main: str | None = backends[0].name  # the default, swapped by model load/unload
        self._cond = threading.Condition()
        self._swapping = False
        self._leases: collections.Counter[int] = collections.Counter()  # id(backend) -> requests holding it

    @property
    def names(self) -> list[str]:
        return list(self._backends)

    @property
    def default(self) -> Backend:
        if self._main is None:
            raise NoModelLoadedError(NO_MODEL)
        return self._backends[self._main]

    @property
    def main(self) -> Backend | None:
        """The swappable default model; None after an unload."""
        return self._backends[self._main] if self._main is not None else None

    def __iter__(self) -> Iterator[Backend]:
        return iter(list(self._backends.values()))

    def __len__(self) -> int:
        return len(self._backends)

    def get(self, choice: str | int | Sequence[str | int] | None = None, wait: float | None = 600.0) -> Backend:
        """The backend for a model name or index (or the first of a list); None: the default.
        While a model loads, waits (up to ``wait`` seconds) for it first."""
        if self._swapping:
            with self._cond:
                self._cond.wait_for(lambda: not self._swapping, timeout=wait)
        backends = self._backends  # one snapshot: a swap replaces the dict, never edits it
        if isinstance(choice, list | tuple):
            choice = choice[0] if choice else None
        if choice is None or choice == "":
            return self.default
        if isinstance(choice, int) or (isinstance(choice, str) and choice.isdigit()
                                       and choice not in backends):
            index = int(choice)
            if 0 <= index < len(backends):
                return list(backends.values())[index]
            raise UnknownModelError(f"there is no model number {index}; {len(backends)} are served")
        if choice in backends:
            return backends[choice]
        if not backends or self._main is None:
            raise NoModelLoadedError(NO_MODEL)
        raise UnknownModelError(f"the model {choice!r} does not exist; served: {', '.join(backends)}")

    @contextlib.contextmanager
    def lease(self, choice: str | int | Sequence[str | int] | None = None) -> Iterator[Backend]:
        """The backend :meth:`get` picks, held until the block ends (a swap drains it after)."""
        while True:
            backend = self.get(choice)
            with self._cond:
                if backend in self._backends.values():  # not swapped out between the two lines
                    self._leases[id(backend)] += 1
                    break
        try:
            yield backend
        finally:
            with self._cond:
                self._leases[id(backend)] -= 1
                if self._leases[id(backend)] <= 0:
                    del self._leases[id(backend)]
                self._cond.notify_all()

    # --- swapping the default model (src/engine/swap.py) ------------------------------------
    def begin_swap(self) -> None:
        with self._cond:
            self._swapping = True

    def end_swap(self) -> None:
        with self._cond:
            self._swapping = False
            self._cond.notify_all()

    def replace(self, new: Backend | None, defaults: dict[str, Any] | None = None) -> Backend | None:
        """Serve ``new`` as the default model in place of the current one (None: no default
        model); returns the one replaced, which requests in flight still use (:meth:`drain`)."""
        with self._cond:
            old = self.main
            rest = {n: b for n, b in self._backends.items() if n != self._main}
            if new is not None and new.name in rest:
                raise ValueError(f"another served model is named {new.name!r}")
            self._backends = ({new.name: new} if new is not None else {}) | rest
            if old is not None:
                self.defaults.pop(old.name, None)
                self._created.pop(old.name, None)
            self._main = new.name if new is not None else None
            if new is not None:
                self.defaults[new.name] = defaults or {}
                self._created[new.name] = int(time.time())
            return old

    def drain(self, backend: Backend, timeout: float) -> None:
        """Wait until no request holds or runs on ``backend`` (at most ``timeout`` seconds),
        then shut it down."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._leases.get(id(backend)) or backend.active_requests) and time.monotonic() < deadline:
                self._cond.wait(0.05)  # leases notify; a backend's own count is read again
        log.info("the model %s is drained; shutting it down", backend.name)
        try:
            backend.shutdown()
        except Exception:
            log.exception("error while shutting down the backend of %s", backend.name)

    def listing(self) -> list[ModelInfo]:
        """The served models as the contract describes them (/v1/models lists them)."""
        return [msgspec.structs.replace(b.describe(), created=self._created.get(b.name, self.created))
                for b in self]

    @property
    def active_requests(self) -> int:
        return sum(b.active_requests for b in self)

    def shutdown(self) -> None:
        """Shut every backend down, each even when another fails (a llama-server child
        left running would outlive the engine)."""
        for backend in self:
            try:
                backend.shutdown()
            except Exception:
                log.exception("error while shutting down the backend of %s", backend.name)


def model_entries(settings: Settings) -> list[dict[str, Any]]:
    """The models to serve, as h2oGPT's model_lock entries: --model_lock (narrowed by
    --visible_models), else --inference_server, else --base_model."""
    if settings.model_lock:
        entries = [dict(e) for e in settings.model_lock]
        if settings.visible_models:
            wanted = [str(v) for v in settings.visible_models]
            entries = [e for i, e in enumerate(entries) if str(i) in wanted or entry_name(e) in wanted]
            if not entries:
                raise UnknownModelError(f"--visible_models {settings.visible_models} names no --model_lock entry")
        return entries
    if settings.inference_server:
        explicit = settings.base_model if settings.base_model != DEFAULT_BASE_MODEL else ""
        return [{"inference_server": settings.inference_server, "base_model": explicit}]
    return [{"base_model": settings.base_model}]


def entry_name(entry: dict[str, Any]) -> str:
    return str(entry.get("base_model") or entry.get("inference_server") or "")


def runs_on_llamacpp(settings: Settings, is_gguf: bool | None = None, binary: str | None = None) -> bool:
    """Whether a local --base_model loads on llama.cpp (else on transformers)."""
    if settings.llm_backend != "auto":
        return settings.llm_backend == "llamacpp"
    if settings.load_8bit:  # --load_8bit is the transformers backend's own quantization: auto keeps it there
        return False
    if is_gguf is None:
        from src.engine.model_source import resolve_model

        is_gguf = resolve_model(settings.base_model).is_gguf
    if binary is None:
        from src.engine.llamacpp_backend import server_path

        binary = server_path(settings.llamacpp_dict)
    return bool(is_gguf and binary)


def build_backend(entry: dict[str, Any], settings: Settings, name: str | None = None) -> Backend:
    """One model_lock entry's backend: remote, llama.cpp (a GGUF file when its server is
    installed, or --llm_backend=llamacpp) or transformers; a local one is listed as ``name``
    when given (a model loaded by its /v1/internal/model/list name)."""
    if entry.get("inference_server"):
        from src.engine.remote_backend import RemoteBackend
        from src.engine.remote_spec import parse_inference_server

        spec = parse_inference_server(str(entry["inference_server"]),
                                      str(entry.get("api_key") or settings.inference_server_api_key))
        return RemoteBackend(spec, name=str(entry.get("base_model") or ""),
                             connect_timeout=settings.inference_server_timeout,
                             read_timeout=settings.inference_server_read_timeout,
                             concurrency=max(64, settings.concurrency_count),
                             context_window=entry.get("max_seq_len"),
                             vision=bool(entry.get("vision", True)))
    local = settings.model_copy(update={k: entry[k] for k in ("base_model", "max_seq_len", "llamacpp_dict")
                                        if entry.get(k) is not None})
    from src.engine.llamacpp_backend import LlamaCppBackend, server_path
    from src.engine.model_source import resolve_model

    source = resolve_model(local.base_model)
    binary = server_path(local.llamacpp_dict)
    if runs_on_llamacpp(local, source.is_gguf, binary):
        if not source.is_gguf:
            raise ValueError(f"--llm_backend=llamacpp needs a GGUF model; {local.base_model} is not one")
        if binary is None:
            raise ValueError("--llm_backend=llamacpp: llama.cpp's server is not installed; run "
                             "bash scripts/install_llamacpp.sh (or set llamacpp_dict's server_path)")
        return LlamaCppBackend(source, name or source.name, binary, local.llamacpp_dict,
                               concurrency=local.concurrency_count, kv_cache_gb=local.kv_cache_gb,
                               max_seq_len=local.max_seq_len, threads=local.resolved_threads())
    from src.engine.loader import load_model
    from src.engine.transformers_backend import TransformersBackend

    loaded = load_model(local)
    return TransformersBackend(
        dataclasses.replace(loaded, name=name) if name else loaded, max_queue_time=settings.max_queue_time or None,
        concurrency=settings.concurrency_count, kv_cache_gb=settings.kv_cache_gb,
    )


def build_registry(settings: Settings) -> ModelRegistry:
    """Start the backends of the models the flags name (the first is the default), then
    one for each of --visible_vision_models."""
    entries = model_entries(settings)
    backends: list[Backend] = []
    defaults: dict[str, dict[str, Any]] = {}
    try:
        for entry in entries:
            backend = build_backend(entry, settings)
            backends.append(backend)
            defaults[backend.name] = {k: entry[k] for k in ("prompt_type", "chat_template") if entry.get(k)}
        if settings.visible_vision_models:
            from src.engine.vision_backend import load_vision_backend

            backends.extend(load_vision_backend(path, settings) for path in settings.visible_vision_models)
    except BaseException:
        for backend in backends:
            backend.shutdown()
        raise
    return ModelRegistry(backends, defaults)
