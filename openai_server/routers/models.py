"""GET /v1/models and GET /v1/models/{model}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from openai_server.errors import NotFoundError
from openai_server.protocol import ModelList, wire
from openai_server.routers.deps import completion_service

router = APIRouter(tags=["models"])


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    """The served model (its id is the base model)."""
    return wire(ModelList(data=await completion_service(request).models()))


@router.get("/models/{model:path}")
async def retrieve_model(model: str, request: Request) -> dict[str, Any]:
    """One model; 404 when it is not served."""
    for known in await completion_service(request).models():
        if known.id == model:
            return wire(known)
    raise NotFoundError(f"the model {model!r} does not exist", param="model", code="model_not_found")
