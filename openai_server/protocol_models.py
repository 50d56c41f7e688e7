"""Wire schemas of text-generation-webui's model endpoints (/v1/internal/model/*), in its shapes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from openai_server.protocol import OpenAIBaseModel


class ModelInfoResponse(BaseModel):
    """GET /v1/internal/model/info: the model served now ("None" after an unload, as textgen says)."""

    model_name: str
    lora_names: list[str] = []
    loader: str | None = Field(None, description="llama.cpp, Transformers or remote; null: no model.")


class ModelListResponse(BaseModel):
    """GET /v1/internal/model/list: the models POST /v1/internal/model/load loads by name."""

    model_names: list[str]


class LoadModelRequest(OpenAIBaseModel):
    """POST /v1/internal/model/load."""

    model_name: str = Field(description="A name from /v1/internal/model/list (or a local path).")
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="Loader flags in textgen's names: ctx_size, gpu_layers, threads, batch_size, "
                    "parallel, loader, load_in_8bit, cpu, flash_attn and cache_type (llama.cpp's); any other "
                    "name is a 400.")
    settings: dict[str, Any] = Field(default_factory=dict,
                                     description="textgen's generation defaults: not taken here (a 400 if set).")
