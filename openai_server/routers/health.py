"""GET /health and GET /version: open, no API key."""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from openai_server.errors import ServiceUnavailableError, error_response, from_exception
from openai_server.routers.deps import engine_client
from src.errors import DomainError

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """200 with the engine's status when it answers, 503 (error envelope) otherwise."""
    try:
        status = await engine_client(request).health(timeout=5)
    except DomainError as exc:
        return error_response(from_exception(exc))
    if not status.ready:
        return error_response(ServiceUnavailableError("the engine is not ready", code="engine_loading"))
    return JSONResponse({"status": "ok", **msgspec.to_builtins(status)})


@router.get("/version")
async def version(request: Request) -> dict[str, str]:
    """The server's version."""
    return {"version": request.app.version}
