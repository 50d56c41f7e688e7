"""GET /metrics, POST /tokenize and POST /detokenize (vLLM's paths, outside /v1)."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from openai_server.protocol import wire
from openai_server.protocol_ops import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeChatRequest,
    TokenizeRequest,
    TokenizeResponse,
)
from openai_server.routers.deps import completion_service, engine_client
from openai_server.translate import conversation
from src import contract

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of the whole server (every worker, the Gradio UI and the engine)."""
    metrics = await engine_client(request).metrics()
    return Response(content=metrics.text, media_type=CONTENT_TYPE_LATEST)


@router.post("/tokenize", response_model=TokenizeResponse)
async def tokenize(body: TokenizeRequest, request: Request) -> dict[str, Any]:
    """Token ids of ``prompt``, or of ``messages`` with the chat template applied."""
    model = await completion_service(request).model_id(body.model)
    if isinstance(body, TokenizeChatRequest):
        asked = contract.TokenizeRequest(model=model, messages=conversation(body.messages),
                                         chat_template=body.chat_template or "",
                                         return_token_strs=body.return_token_strs)
    else:
        asked = contract.TokenizeRequest(model=model, prompt=body.prompt, add_special_tokens=body.add_special_tokens,
                                         return_token_strs=body.return_token_strs)
    return wire(TokenizeResponse(**msgspec.to_builtins(await engine_client(request).tokenize(asked))))


@router.post("/detokenize", response_model=DetokenizeResponse)
async def detokenize(body: DetokenizeRequest, request: Request) -> dict[str, Any]:
    """The text of ``tokens``; ids outside the vocabulary are a 400."""
    model = await completion_service(request).model_id(body.model)
    result = await engine_client(request).detokenize(contract.DetokenizeRequest(tokens=body.tokens, model=model))
    return wire(DetokenizeResponse(prompt=result.prompt))
