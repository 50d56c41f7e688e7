"""POST /v1/completions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from openai_server.protocol import CompletionRequest, wire
from openai_server.routers.deps import completion_service, identity
from openai_server.routers.disconnect import until_disconnected
from openai_server.sse import sse_response

router = APIRouter(tags=["completions"])


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request) -> Any:
    """Text completion of a prompt or a list of prompts; ``stream`` returns SSE chunks."""
    work = completion_service(request).completion(body, identity(request, body.user))
    result = await until_disconnected(request, work)
    if isinstance(result, BaseModel):
        return JSONResponse(wire(result))
    return sse_response(result)
