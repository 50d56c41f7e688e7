"""text-generation-webui's model endpoints: GET /v1/internal/model/info and list, POST load
and unload. info needs an API key like every /v1 route; list, load and unload need the admin
key (--admin_api_key) when keys are enforced."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from openai_server.protocol_models import LoadModelRequest, ModelInfoResponse, ModelListResponse
from openai_server.serving_models import ModelsService

router = APIRouter(prefix="/internal/model", tags=["models"])


def _service(request: Request) -> ModelsService:
    service: ModelsService = request.app.state.models
    return service


def _admin(request: Request) -> None:
    request.app.state.auth.check_admin(request.headers)


@router.get("/info", response_model=ModelInfoResponse)
async def model_info(request: Request) -> ModelInfoResponse:
    """The model served now: ``model_name`` ("None" after an unload), ``lora_names``, ``loader``."""
    return await _service(request).info()


@router.get("/list", response_model=ModelListResponse, dependencies=[Depends(_admin)])
async def model_list(request: Request) -> ModelListResponse:
    """The models this server can load: the packaged default, --model_dir's, the HF cache's."""
    return await _service(request).list()


@router.post("/load", dependencies=[Depends(_admin)])
async def load_model(body: LoadModelRequest, request: Request) -> str:
    """Load ``model_name`` with ``args`` and serve it in place of the current model; answers
    "OK" once it serves. Requests in flight finish on the old model; a load that fails keeps it."""
    await _service(request).load(body)
    return "OK"


@router.post("/unload", dependencies=[Depends(_admin)])
async def unload_model(request: Request) -> str:
    """Stop serving the model; generation requests get 503 until a load."""
    await _service(request).unload()
    return "OK"
