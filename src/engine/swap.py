"""Loading and unloading the served model at run time (text-generation-webui's
/v1/internal/model/load and unload), without restarting anything else.

A load builds the new backend beside the one serving (llama.cpp: a new llama-server child on
its own port; transformers: new weights in this process) while new requests wait for it
(``ModelRegistry.begin_swap``); then the registry switches atomically, the waiting requests go
to the new model, and the old one is drained in the background: requests in flight finish on
it, then it is shut down. A load that fails (a bad name, a broken file) leaves the old model
serving and says why. An unload leaves no default model: generation requests get
``model_not_loaded`` (503) until a load.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pydantic import ValidationError

from src.contract import LoadArgs, LoadModelRequest, ModelNames, ModelState
from src.engine.catalog import ModelCatalog
from src.engine.registry import ModelRegistry, build_backend, model_entries, runs_on_llamacpp
from src.errors import InvalidParamsError, ModelLoadError, UnsupportedFeatureError
from src.settings import Settings

log = logging.getLogger(__name__)

#: The loader names of text-generation-webui's /v1/internal/model/info, by backend kind.
LOADER_OF_KIND = {"llama.cpp": "llama.cpp", "transformers": "Transformers", "vision": "Transformers",
                  "remote": "remote"}
_REASON_CHARS = 300


def load_plan(base_model: str, args: LoadArgs, settings: Settings) -> tuple[dict[str, Any], Settings]:
    """The model_lock entry and the settings that build_backend() loads ``base_model`` with;
    ModelLoadError for a combination the flags' own checks refuse."""
    llama = dict(settings.llamacpp_dict)
    for key, value in (("n_ctx", args.context), ("n_gpu_layers", args.gpu_layers), ("n_threads", args.threads),
                       ("n_batch", args.batch_size), ("n_parallel", args.parallel),
                       ("flash_attn", args.flash_attn), ("cache_type", args.cache_type)):
        if value is not None:
            llama[key] = value
    update: dict[str, Any] = {"base_model": base_model, "llamacpp_dict": llama}
    flags: dict[str, Any] = {"max_seq_len": args.context, "llm_backend": args.backend,
                             "load_8bit": args.load_8bit, "n_threads": args.threads,
                             "concurrency_count": args.parallel}
    update.update({key: value for key, value in flags.items() if value is not None})
    try:
        local = Settings(**{**settings.model_dump(), "model_lock": [], **update})
    except (ValidationError, ValueError) as exc:
        raise ModelLoadError(f"these args cannot load the model: {_reason(exc)}", param="args") from None
    if (args.flash_attn is not None or args.cache_type is not None) and not runs_on_llamacpp(local):
        given = [name for name, value in (("flash_attn", args.flash_attn), ("cache_type", args.cache_type))
                 if value is not None]
        raise InvalidParamsError(f"args {given} are llama.cpp's; {base_model} loads on transformers here "
                                 "(a GGUF model with llama-server installed loads on llama.cpp)", param="args")
    entry = {"base_model": base_model, "max_seq_len": local.max_seq_len, "llamacpp_dict": local.llamacpp_dict}
    return entry, local


def _reason(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text[:_REASON_CHARS]


class ModelSwapper:
    """The engine's side of the model endpoints: one load or unload at a time."""

    def __init__(self, registry: ModelRegistry, settings: Settings, catalog: ModelCatalog | None = None) -> None:
        self.registry = registry
        self.settings = settings
        self.catalog = catalog or ModelCatalog(settings)
        self._lock = threading.Lock()
        # the longest an answer in flight may still take on the model swapped out
        self.drain_timeout = settings.max_time + settings.max_queue_time + 30.0

    def state(self) -> ModelState:
        main = self.registry.main
        if main is None:
            return ModelState(model_name="", loader="")
        info = main.describe()
        return ModelState(model_name=main.name, loader=LOADER_OF_KIND.get(info.backend, info.backend),
                          context_window=info.context_window)

    def names(self) -> ModelNames:
        return ModelNames(model_names=self.catalog.names())

    def _refuse_several(self) -> None:
        entries = model_entries(self.settings)
        if len(entries) > 1:
            raise UnsupportedFeatureError(
                f"this server serves {len(entries)} models of --model_lock; loading or unloading swaps the one "
                "model of a server: restart it with the --model_lock you want", param="model_name")

    def load(self, request: LoadModelRequest) -> ModelState:
        """Build ``request.name`` with its args, switch to it, drain the old model."""
        self._refuse_several()
        base_model = self.catalog.base_model(request.name)  # UnknownModelError: a 404
        entry, local = load_plan(base_model, request.args, self.settings)
        with self._lock:
            self.registry.begin_swap()
            try:
                try:
                    new = build_backend(entry, local, name=request.name)
                except InvalidParamsError:  # a 400 already, saying why
                    raise
                except Exception as exc:  # a broken file, a child that died, a refused flag: the old model stays
                    log.exception("the model %s did not load", request.name)
                    raise self._failed(request.name, exc) from None
                try:
                    old = self.registry.replace(new)
                except ValueError as exc:  # the name of another served model (a vision one)
                    new.shutdown()
                    raise self._failed(request.name, exc) from None
            finally:
                self.registry.end_swap()
        log.info("serving %s%s", new.name, f" in place of {old.name}" if old is not None else "")
        self._drain(old)
        return self.state()

    def _failed(self, name: str, exc: BaseException) -> ModelLoadError:
        served = self.registry.main
        kept = f"; {served.name} is still served" if served is not None else ""
        return ModelLoadError(f"the model {name!r} did not load ({_reason(exc)}){kept}")

    def unload(self) -> ModelState:
        """Stop serving the default model (requests in flight on it finish first)."""
        self._refuse_several()
        with self._lock:
            old = self.registry.replace(None)
        if old is not None:
            log.info("unloaded %s", old.name)
        self._drain(old)
        return self.state()

    def _drain(self, old: Any) -> None:
        if old is not None:
            threading.Thread(target=self.registry.drain, args=(old, self.drain_timeout),
                             name=f"drain-{old.name}", daemon=True).start()
