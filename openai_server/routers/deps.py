"""Per-request access to what create_app() put on ``app.state``."""

from __future__ import annotations

from fastapi import Request

from openai_server.serving import CompletionService, EngineClient


def engine_client(request: Request) -> EngineClient:
    client: EngineClient = request.app.state.engine_client
    return client


def completion_service(request: Request) -> CompletionService:
    service: CompletionService = request.app.state.completions
    return service
