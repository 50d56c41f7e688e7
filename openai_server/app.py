"""The FastAPI app factory of the OpenAI-compatible API (one app per worker process).

``create_app(settings, engine_client)`` wires the pieces: error envelope handlers, the
middleware (CORS, metrics, draining on shutdown, API keys, rate limits, the request body
limit: openai_server.middleware), and the routers of ``openai_server.routers``.
The engine client is the worker's IPC client (src.ipc.client.Engine) or, in unit
tests, a scripted fake with the same two methods.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openai_server.auth import ApiKeyMiddleware, Authenticator
from openai_server.errors import RequestTooLargeError, error_response, install_error_handlers
from openai_server.errors_anthropic import AnthropicErrorMiddleware
from openai_server.files import FileStore
from openai_server.middleware import (
    Drain,
    DrainMiddleware,
    EnvelopeCORSMiddleware,
    MetricsMiddleware,
    RateLimitMiddleware,
    WebSocketMiddleware,
)
from openai_server.routers import OPEN_ROUTERS, V1_ROUTERS, internal, rerank
from openai_server.saved_chats import SavedChats
from openai_server.serving import CompletionService
from openai_server.serving_anthropic import MessagesService
from openai_server.serving_documents import CollectionService, EmbeddingService, FileService
from openai_server.serving_internal import InternalService
from openai_server.serving_media import AudioService, ImageService
from openai_server.serving_models import ModelsService
from openai_server.serving_moderation import ModerationService
from openai_server.serving_responses import ResponsesService
from src.contract import Engine
from src.settings import Settings
from src.storage.responses import ResponseStore

log = logging.getLogger(__name__)


def product_version() -> str:
    try:
        data = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
        return str(data["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0.0.0"


class BodyLimitMiddleware:
    """Refuses a request body over ``max_bytes`` with 413, whether or not it is chunked."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send)
            return
        if length is not None:
            await self.app(scope, receive, send)
            return
        # No length given (chunked): read the body here, up to the limit, then replay it.
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse(send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        error = RequestTooLargeError(
            f"the request body is larger than {self.max_bytes} bytes "
            "(see --openai_max_request_bytes)", code="request_too_large",
        )
        response = error_response(error)
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def files_dir(settings: Settings) -> Path:
    """Where /v1/files keeps its files: --openai_files_dir, else <db_root>/openai_files."""
    return Path(settings.openai_files_dir or Path(settings.db_root) / "openai_files").expanduser()


def create_app(settings: Settings, engine_client: Engine) -> FastAPI:
    """The API app over ``engine_client``; nothing global, one app per call."""
    app = FastAPI(
        title="h2oGPT OpenAI-compatible API",
        version=product_version(),
        description="OpenAI-compatible chat and text completions, the Responses API (stored "
        "responses), Anthropic's Messages API, embeddings and files over the local engine, document collections (/v1/collections), speech (/v1/audio) and images.",
    )
    auth = Authenticator(settings)
    app.state.settings = settings
    app.state.engine_client = engine_client
    app.state.auth = auth
    app.state.completions = CompletionService(engine_client, settings.openai_max_messages, app.version,
                                              SavedChats(settings) if settings.save_chats else None)
    app.state.embeddings = EmbeddingService(engine_client)
    app.state.moderations = ModerationService(engine_client)
    app.state.files = FileService(FileStore(files_dir(settings)))
    app.state.collections = CollectionService(engine_client, app.state.files)
    app.state.audio = AudioService(engine_client, settings.max_audio_bytes)
    app.state.images = ImageService(engine_client)
    app.state.responses = ResponsesService(app.state.completions, lambda: ResponseStore.open(
        settings.database_url, settings.db_root, settings.responses_retention_days), app.state.files)
    app.state.messages = MessagesService(app.state.completions)
    app.state.internal = InternalService(engine_client, app.state.completions)
    app.state.models = ModelsService(engine_client)
    app.state.drain = Drain()
    install_error_handlers(app)
    # Added innermost first: CORS, metrics, draining, keys, rate limits, body size, the routes.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.openai_max_request_bytes)
    if settings.api_rate_limit or settings.enforce_h2ogpt_api_key:  # keys may carry their own
        app.add_middleware(RateLimitMiddleware, authenticator=auth, engine_client=engine_client,
                           default_limit=settings.api_rate_limit)
    protected = {"/tokenize", "/detokenize", "/rerank"} | ({"/metrics"} if settings.metrics_api_key_required else set())
    app.add_middleware(ApiKeyMiddleware, authenticator=auth, paths=frozenset(protected),
                       open_paths=internal.OPEN_PATHS)
    app.add_middleware(DrainMiddleware, drain=app.state.drain)
    app.add_middleware(MetricsMiddleware, engine_client=engine_client)
    app.add_middleware(WebSocketMiddleware)
    app.add_middleware(AnthropicErrorMiddleware)  # Anthropic's envelope on /v1/messages, from every layer
    if settings.cors_origins:
        app.add_middleware(
            EnvelopeCORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
            allow_headers=["*"], expose_headers=["Retry-After"], max_age=600,
        )
    for router in OPEN_ROUTERS:
        app.include_router(router)
    for router in V1_ROUTERS:
        app.include_router(router, prefix="/v1")
    app.include_router(rerank.router, prefix="/v1")  # and /rerank, as vLLM and llama.cpp serve both
    app.include_router(rerank.router)
    return app
