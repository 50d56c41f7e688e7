"""The model endpoints over the engine: textgen's loader ``args`` -> the contract's LoadArgs.

Only the names that mean something here are taken (``ctx_size`` is the context window per
sequence, ``gpu_layers`` llama.cpp's offloaded layers, ``loader`` the backend, ...); another
name is a 400 naming it, rather than a flag silently dropped.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openai_server.errors import InvalidRequestError
from openai_server.protocol_models import LoadModelRequest, ModelInfoResponse, ModelListResponse
from src import contract
from src.contract import Engine

#: textgen's arg name (and its older spellings) -> LoadArgs field.
ARG_NAMES = {
    "ctx_size": "context", "n_ctx": "context", "max_seq_len": "context",
    "gpu_layers": "gpu_layers", "n_gpu_layers": "gpu_layers", "n-gpu-layers": "gpu_layers",
    "threads": "threads", "n_threads": "threads",
    "batch_size": "batch_size", "n_batch": "batch_size",
    "parallel": "parallel",
    "loader": "backend",
    "load_in_8bit": "load_8bit", "load_8bit": "load_8bit",
    "cpu": "cpu",
    "flash_attn": "flash_attn", "flash-attn": "flash_attn",
    "cache_type": "cache_type",
}
#: textgen's loader names (and ours) -> --llm_backend.
LOADERS: dict[str, contract.LlmBackend] = {"llama.cpp": "llamacpp", "llamacpp": "llamacpp", "transformers": "transformers", "auto": "auto"}


class _Args(BaseModel):
    """The args' values, checked (a 400 names the one that is wrong)."""

    model_config = ConfigDict(extra="forbid")
    context: int | None = Field(None, ge=16, le=1 << 24)
    gpu_layers: int | None = Field(None, ge=0, le=10_000)
    threads: int | None = Field(None, ge=1, le=1024)
    batch_size: int | None = Field(None, ge=1, le=1 << 20)
    parallel: int | None = Field(None, ge=1, le=256)
    backend: str | None = None
    load_8bit: bool | None = None
    cpu: bool | None = None
    flash_attn: bool | None = None
    cache_type: str | None = None


def load_args(args: dict[str, Any]) -> contract.LoadArgs:
    """textgen's ``args`` as the contract's LoadArgs; InvalidRequestError names what is refused."""
    unknown = sorted(k for k in args if k not in ARG_NAMES)
    if unknown:
        raise InvalidRequestError(f"unknown args {unknown}: this server takes {sorted(ARG_NAMES)}", param="args",
                                  code="invalid_parameter")
    mapped = {ARG_NAMES[k]: v for k, v in args.items()}
    try:
        checked = _Args(**mapped)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        given = next((k for k in args if ARG_NAMES[k] == field), field)
        raise InvalidRequestError(f"args.{given}: {error['msg']}", param=f"args.{given}",
                                  code="invalid_parameter") from None
    backend = None
    if checked.backend is not None:
        backend = LOADERS.get(checked.backend.lower())
        if backend is None:
            raise InvalidRequestError(f"args.loader: {checked.backend!r} is not a loader here; use "
                                      "llama.cpp, Transformers or auto", param="args.loader", code="invalid_parameter")
    gpu_layers = 0 if checked.cpu else checked.gpu_layers
    return contract.LoadArgs(context=checked.context, gpu_layers=gpu_layers, threads=checked.threads,
                             batch_size=checked.batch_size, parallel=checked.parallel,
                             backend=backend,
                             load_8bit=checked.load_8bit, flash_attn=checked.flash_attn,
                             cache_type=_cache_type(checked.cache_type, checked.flash_attn))


def _cache_type(value: str | None, flash_attn: bool | None) -> contract.CacheType | None:
    """llama.cpp's K and V cache type; a quantized V cache needs its flash attention."""
    if value is None:
        return None
    if value not in contract.CACHE_TYPES:
        raise InvalidRequestError(f"args.cache_type: {value!r} is not a cache type llama.cpp takes; use one of "
                                  f"{', '.join(contract.CACHE_TYPES)}", param="args.cache_type",
                                  code="invalid_parameter")
    if flash_attn is False and value not in ("f32", "f16", "bf16"):
        raise InvalidRequestError(f"args.cache_type: {value!r} quantizes the V cache, which llama.cpp does only "
                                  "with flash attention: drop flash_attn: false", param="args.cache_type",
                                  code="invalid_parameter")
    return value  # type: ignore[return-value]  # one of CacheType, checked above


def info_response(state: contract.ModelState) -> ModelInfoResponse:
    if not state.model_name:
        return ModelInfoResponse(model_name="None", lora_names=[], loader=None)
    return ModelInfoResponse(model_name=state.model_name, lora_names=state.lora_names, loader=state.loader)


class ModelsService:
    """GET info and list, POST load and unload (textgen's /v1/internal/model/*)."""

    def __init__(self, client: Engine) -> None:
        self.client = client

    async def info(self) -> ModelInfoResponse:
        return info_response(await self.client.model_state())

    async def list(self) -> ModelListResponse:
        return ModelListResponse(model_names=(await self.client.loadable_models()).model_names)

    async def load(self, body: LoadModelRequest) -> ModelInfoResponse:
        if body.settings:
            raise InvalidRequestError(f"settings {sorted(body.settings)} are not taken here: send generation "
                                      "defaults with each request", param="settings", code="invalid_parameter")
        request = contract.LoadModelRequest(name=body.model_name, args=load_args(body.args))
        return info_response(await self.client.load_model(request))

    async def unload(self) -> ModelInfoResponse:
        return info_response(await self.client.unload_model())
