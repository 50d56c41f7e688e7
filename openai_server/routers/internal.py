"""text-generation-webui's internal API under /v1/internal (docs/textgen_api.md): tokens,
next-token probabilities, a chat's prompt, stopping answers, health. Behind the API keys
like every /v1 route, except /v1/internal/health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from openai_server.protocol import ChatCompletionRequest, wire
from openai_server.protocol_internal import (
    ChatPromptResponse,
    DecodeRequest,
    DecodeResponse,
    EncodeRequest,
    EncodeResponse,
    LogitsRequest,
    TokenCountResponse,
)
from openai_server.routers.deps import identity, internal_service

router = APIRouter(prefix="/internal", tags=["text-generation-webui"])

#: Open with --enforce_h2ogpt_api_key (as /health is).
OPEN_PATHS = frozenset({"/v1/internal/health"})


@router.get("/health")
async def health() -> dict[str, str]:
    """``{"status": "ok"}`` while the API answers (no key needed)."""
    return {"status": "ok"}


@router.post("/encode", response_model=EncodeResponse)
async def encode(body: EncodeRequest, request: Request) -> dict[str, Any]:
    """The token ids of ``text`` and their number."""
    return wire(await internal_service(request).encode(body))


@router.post("/decode", response_model=DecodeResponse)
async def decode(body: DecodeRequest, request: Request) -> dict[str, Any]:
    """The text of ``tokens``; ids outside the vocabulary are a 400."""
    return wire(await internal_service(request).decode(body))


@router.post("/token-count", response_model=TokenCountResponse)
async def token_count(body: EncodeRequest, request: Request) -> dict[str, Any]:
    """How many tokens ``text`` is."""
    return wire(await internal_service(request).token_count(body))


@router.post("/logits", response_model=dict[str, float])
async def logits(body: LogitsRequest, request: Request) -> JSONResponse:
    """The ``top_logits`` most likely next tokens of ``prompt`` as ``{token: probability}``:
    raw (the softmax of the logits), or after the request's samplers with ``use_samplers``."""
    return JSONResponse(await internal_service(request).logits(body))


@router.post("/chat-prompt", response_model=ChatPromptResponse)
async def chat_prompt(body: ChatCompletionRequest, request: Request) -> dict[str, Any]:
    """The prompt text the chat's ``messages`` render to with the model's chat template."""
    return wire(await internal_service(request).chat_prompt(body))


@router.post("/stop-generation")
async def stop_generation(request: Request) -> JSONResponse:
    """Stop the caller's running answers (each ends as it does at a stop string); ``"OK"``."""
    await internal_service(request).stop_generation(identity(request))
    return JSONResponse("OK")
