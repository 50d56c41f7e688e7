"""Per-request access to what create_app() put on ``app.state``."""

from __future__ import annotations

from fastapi import Request

from openai_server.identity import Identity, file_owner, identify
from openai_server.serving import CompletionService
from openai_server.serving_anthropic import MessagesService
from openai_server.serving_documents import CollectionService, EmbeddingService, FileService
from openai_server.serving_internal import InternalService
from openai_server.serving_media import AudioService, ImageService
from openai_server.serving_moderation import ModerationService
from openai_server.serving_responses import ResponsesService
from src.contract import Engine


def engine_client(request: Request) -> Engine:
    client: Engine = request.app.state.engine_client
    return client


def completion_service(request: Request) -> CompletionService:
    service: CompletionService = request.app.state.completions
    return service


def identity(request: Request, user: str | None = None) -> Identity:
    """Who the request acts for (openai_server.identity); raises AuthenticationError."""
    return identify(request.app.state.auth, request.headers, user)


def owner(request: Request) -> str:
    """The owner of the request's /v1/files: its API key."""
    return file_owner(request.headers)


def embedding_service(request: Request) -> EmbeddingService:
    service: EmbeddingService = request.app.state.embeddings
    return service


def file_service(request: Request) -> FileService:
    service: FileService = request.app.state.files
    return service


def collection_service(request: Request) -> CollectionService:
    service: CollectionService = request.app.state.collections
    return service


def audio_service(request: Request) -> AudioService:
    service: AudioService = request.app.state.audio
    return service


def image_service(request: Request) -> ImageService:
    service: ImageService = request.app.state.images
    return service


def responses_service(request: Request) -> ResponsesService:
    service: ResponsesService = request.app.state.responses
    return service


def messages_service(request: Request) -> MessagesService:
    service: MessagesService = request.app.state.messages
    return service


def internal_service(request: Request) -> InternalService:
    service: InternalService = request.app.state.internal
    return service


def moderation_service(request: Request) -> ModerationService:
    service: ModerationService = request.app.state.moderations
    return service
