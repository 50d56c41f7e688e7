"""Routers, one per endpoint family. A route handler is a few lines: HTTP only.

``OPEN_ROUTERS`` are outside /v1: /health, /version and /metrics are open (/metrics needs
a key with --metrics_api_key_required), /tokenize and /detokenize need one when enforced; ``V1_ROUTERS`` are mounted under
/v1 behind the API key check. To add an endpoint family (for example /v1/embeddings):
write ``routers/embeddings.py`` with an ``APIRouter`` whose handlers call the engine
through ``engine_client(request)`` (``await client.embed(EmbedRequest(...))``: a method of
the contract's ``Engine``, src/contract/), register the engine-side method in
src/ipc/services.py, and append the router to ``V1_ROUTERS``.
"""

from __future__ import annotations

from fastapi import APIRouter

from openai_server.routers import (
    audio,
    chat,
    collections,
    completions,
    embeddings,
    files,
    health,
    images,
    internal,
    internal_models,
    messages,
    models,
    moderations,
    ops,
    responses,
)

OPEN_ROUTERS: list[APIRouter] = [health.router, ops.router]
V1_ROUTERS: list[APIRouter] = [
    models.router, chat.router, completions.router, embeddings.router, files.router,
    collections.router, audio.router, images.router, responses.router, messages.router,
    internal.router,
    internal_models.router,
    moderations.router,
]
