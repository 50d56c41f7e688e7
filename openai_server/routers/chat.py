"""POST /v1/chat/completions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from openai_server.protocol import ChatCompletionRequest, wire
from openai_server.routers.deps import completion_service, identity
from openai_server.routers.disconnect import until_disconnected
from openai_server.sse import sse_response

router = APIRouter(tags=["chat"])


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    """Chat completion; ``stream`` returns server-sent ``chat.completion.chunk`` events."""
    work = completion_service(request).chat(body, identity(request, body.user))
    result = await until_disconnected(request, work)
    if isinstance(result, BaseModel):
        return JSONResponse(wire(result))
    return sse_response(result)
