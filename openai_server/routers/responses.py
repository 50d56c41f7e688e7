"""POST /v1/responses and the stored responses: GET, DELETE and input_items."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from openai_server.protocol_responses import (
    DeletedResponse,
    InputItemList,
    ResponseCreateRequest,
    ResponseObject,
)
from openai_server.routers.deps import identity, owner, responses_service
from openai_server.routers.disconnect import until_disconnected
from openai_server.sse import named_sse_response

router = APIRouter(tags=["responses"])


@router.post("/responses", response_model=ResponseObject)
async def create_response(body: ResponseCreateRequest, request: Request) -> Any:
    """A model response (OpenAI's Responses API); ``stream`` returns its server-sent events.
    Input parts may name this API key's /v1/files by ``file_id`` (an image, a text or PDF file)."""
    who = identity(request, body.user)
    work = responses_service(request).create(body, who.name, who, file_owner=owner(request))
    result = await until_disconnected(request, work)
    if isinstance(result, BaseModel):
        return JSONResponse(result.wire() if isinstance(result, ResponseObject) else result.model_dump())
    return named_sse_response(result)


@router.get("/responses/{response_id}", response_model=ResponseObject)
async def retrieve_response(response_id: str, request: Request) -> Any:
    """A stored response of the requester (another key's is a 404)."""
    response = await responses_service(request).retrieve(identity(request).name, response_id)
    return JSONResponse(response.wire())


@router.delete("/responses/{response_id}", response_model=DeletedResponse)
async def delete_response(response_id: str, request: Request) -> Any:
    """Delete a stored response of the requester."""
    return (await responses_service(request).delete(identity(request).name, response_id)).model_dump()


@router.get("/responses/{response_id}/input_items", response_model=InputItemList)
async def list_input_items(response_id: str, request: Request, after: str | None = None,
                           limit: int = Query(20, ge=1, le=100),
                           order: Literal["asc", "desc"] = "desc") -> Any:
    """The input items of a stored response, newest first by default, ``limit`` a page."""
    page = await responses_service(request).input_items(identity(request).name, response_id, after, limit, order)
    return page.model_dump(mode="json")
