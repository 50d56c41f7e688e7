"""POST /v1/messages and /v1/messages/count_tokens (Anthropic's Messages API).

The key goes in ``x-api-key`` (or ``Authorization: Bearer``); ``anthropic-version`` is
accepted and not needed. Errors on these paths are in Anthropic's envelope
(openai_server.errors_anthropic).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from openai_server.protocol_anthropic import CountTokensFields, Message, MessagesRequest, TokenCount
from openai_server.routers.deps import identity, messages_service
from openai_server.routers.disconnect import until_disconnected
from openai_server.sse import named_sse_response

router = APIRouter(tags=["messages"])


@router.post("/messages", response_model=Message)
async def create_message(body: MessagesRequest, request: Request) -> Any:
    """A message from the model; ``stream`` returns Anthropic's server-sent events."""
    requester = identity(request)  # the key, or the x-h2ogpt-user login
    result = await until_disconnected(request, messages_service(request).create(body, requester))
    if isinstance(result, BaseModel):
        return JSONResponse(result.model_dump(mode="json"))
    return named_sse_response(result)


@router.post("/messages/count_tokens", response_model=TokenCount)
async def count_tokens(body: CountTokensFields, request: Request) -> Any:
    """The number of prompt tokens of a Messages request, without generating."""
    return (await messages_service(request).count_tokens(body)).model_dump()
