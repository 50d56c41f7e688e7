"""The engine contract: the typed messages that cross the boundary between the API workers
(and the UI, the CLI) and the engine process.

Declared once, as msgspec structs, and checked on arrival: the IPC decodes every request and
every event into these types (``src/ipc/codec.py``), a field of the wrong type or a field
nobody declared is refused there (``forbid_unknown_fields``), and mypy carries a change of a
field to every caller. Modelled on vLLM's ``EngineCoreRequest`` / ``EngineCoreOutput``
structs and llama.cpp's server ("parse into native types as early as possible").

- A conversation is data (:class:`Message`): roles in the order they were sent, content as
  text and image parts in their turn, an assistant's tool calls with their ids, a tool
  result with its ``tool_call_id``. Nothing renders it to text to be parsed again: each
  backend renders it its own way.
- An answer is a stream of :class:`EvalEvent`: text deltas, tool-call deltas (each call's
  first delta with its id and name), log probs, token counts, a :class:`FinishReason` and
  the sources on the last event.
- A model is described by :class:`ModelInfo` (backend kind, context window, vocabulary
  size, modalities, capabilities), not by a free dict.

The contract is this package: the conversation, the answer, models and operations here; the
document services in ``documents.py``, speech and images in ``media.py``, text-generation-webui's
internal API (next-token probabilities, chat prompts, stopping answers) in ``internal.py``, loading and
unloading models in ``models.py``, moderation in ``moderation.py``. It imports nothing
of the engine (no torch): workers import it. The transport
and its codec are src/ipc/.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from typing import Any, Literal, Protocol

import msgspec

from src.contract.base import Contract, Requester
from src.contract.documents import (
    AddFilesRequest,
    AddTextRequest,
    CollectionDeleted,
    CollectionInfo,
    CollectionRequest,
    CollectionsRequest,
    CreateCollectionRequest,
    DeleteCollectionRequest,
    DeleteSourcesRequest,
    EmbedRequest,
    EmbedResult,
    FileUpload,
    IngestedFile,
    IngestReport,
    RerankRequest,
    RerankResult,
    SourceInfo,
)
from src.contract.internal import ChatPrompt, LogitsRequest, LogitsResult, Stopped, StopRequest
from src.contract.media import (
    ImagesRequest,
    ImagesResult,
    MediaInfo,
    Segment,
    SpeechRequest,
    TranscribeRequest,
    Transcription,
    Word,
)
from src.contract.models import (
    CACHE_TYPES,
    CacheType,
    LlmBackend,
    LoadArgs,
    LoadModelRequest,
    ModelNames,
    ModelState,
)
from src.contract.moderation import MODERATION_CATEGORIES, ModerateRequest, ModerateResult, ModerationVerdict
from src.params import EvalParams

__all__ = [
    "AddFilesRequest", "AddTextRequest", "BackendHealth", "CACHE_TYPES", "CacheType", "BackendKind", "CancelRequest", "ChatPrompt",
    "CollectionDeleted", "CollectionInfo", "CollectionRequest", "CollectionsRequest", "Contract",
    "CreateCollectionRequest", "DeleteCollectionRequest", "DeleteSourcesRequest", "DetokenizeRequest",
    "DetokenizeResult", "EmbedRequest", "EmbedResult", "Empty", "Engine", "EvalEvent", "EvaluateRequest",
    "FileUpload", "FinishReason", "Health", "HttpObservation", "ImagePart", "ImagesRequest", "ImagesResult",
    "IngestedFile", "IngestReport", "JsonSchemaFormat", "LlmBackend", "LoadArgs", "LoadModelRequest",
    "LogitsRequest", "LogitsResult", "MediaInfo", "Message", "MetricsText", "ModelCapabilities", "ModelInfo",
    "ModelNames", "ModelState", "ModerateRequest", "ModerateResult", "MODERATION_CATEGORIES",
    "ModerationVerdict", "Part", "RateHit", "RateVerdict", "Requester", "RerankRequest", "RerankResult",
    "Role", "Segment", "Source", "SourceInfo", "SpeechRequest", "Stopped", "StopRequest", "TextPart",
    "TokenizeRequest", "TokenizeResult", "TokenLogprob", "ToolCall",
    "ToolCallDelta", "TranscribeRequest", "Transcription", "Word",
]

Role = Literal["system", "developer", "user", "assistant", "tool"]
BackendKind = Literal["transformers", "llama.cpp", "vision", "remote"]


# --- the conversation -------------------------------------------------------------------------
class TextPart(Contract, tag="text", tag_field="type"):
    text: str


class ImagePart(Contract, tag="image_url", tag_field="type"):
    """An image by URL: a ``data:`` URI, or an http(s) URL (fetched only where allowed)."""

    url: str
    detail: str | None = None


Part = TextPart | ImagePart


class ToolCall(Contract):
    """A call the assistant made: its id, the function's name and its arguments (JSON text)."""

    id: str
    name: str
    arguments: str = "{}"


class Message(Contract):
    """One turn of a conversation, as the client sent it."""

    role: Role
    content: str | list[Part] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None

    def text(self) -> str:
        """The text of the message (its text parts joined by newlines)."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))

    def images(self) -> list[ImagePart]:
        if isinstance(self.content, list):
            return [p for p in self.content if isinstance(p, ImagePart)]
        return []


class JsonSchemaFormat(Contract):
    """A ``response_format`` of type json_schema as the client sent it (name, strict), kept so
    that a remote engine receives what the client sent."""

    name: str
    schema: dict[str, Any] = {}
    strict: bool | None = None
    description: str | None = None


# --- requests ---------------------------------------------------------------------------------
class Empty(Contract):
    """The request of a method that takes nothing (models, health)."""


class EvaluateRequest(Contract):
    """One answer to generate.

    ``params`` are the h2oGPT evaluate() parameters (src/params.py's ``EvalParams``; only
    the fields the caller set travel, and EvalParams validates them on arrival). ``messages``, when given, is
    the conversation as the client sent it (the OpenAI-style fronts); h2oGPT's additions
    (``system_prompt``, ``chat_conversation``, ``text_context_list``, document context) are
    applied to it in one place, src/conversation.py. Without ``messages`` the conversation is
    h2oGPT's own: ``system_prompt``, ``chat_conversation`` and ``instruction``.
    ``strict_max_new_tokens``: the client asked for ``params.max_new_tokens`` itself (OpenAI's
    ``max_tokens``), so more than the context window leaves after the prompt is refused
    (``context_length_exceeded``) instead of cut to fit (unless ``--clamp_max_new_tokens``).
    """

    params: EvalParams = msgspec.field(default_factory=EvalParams)
    messages: list[Message] | None = None
    requester: Requester | None = None
    json_schema: JsonSchemaFormat | None = None
    strict_max_new_tokens: bool = False


class TokenizeRequest(Contract):
    """vLLM's /tokenize: a ``prompt`` text, or chat ``messages`` rendered as the model reads them."""

    model: str | None = None
    prompt: str | None = None
    messages: list[Message] | None = None
    add_special_tokens: bool = True
    add_generation_prompt: bool = True
    return_token_strs: bool = False
    prompt_type: str = ""
    chat_template: str = ""


class TokenizeResult(Contract):
    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None = None


class DetokenizeRequest(Contract):
    tokens: list[int]
    model: str | None = None


class DetokenizeResult(Contract):
    prompt: str


# --- the answer -------------------------------------------------------------------------------
class FinishReason(enum.StrEnum):
    """Why an answer ended. ``cancelled`` never reaches a client (it left)."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CANCELLED = "cancelled"


class ToolCallDelta(Contract):
    """A piece of the ``index``-th tool call of an answer: its first piece has ``id`` and
    ``name``, later ones carry fragments of ``arguments`` (JSON text)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class TokenLogprob(Contract, kw_only=False):
    """A generated token's text, log probability and the most likely alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


class Source(Contract):
    """A document chunk an answer used: ``score`` is its similarity to the question; audio
    chunks have ``start`` and ``end`` seconds."""

    source: str
    content: str = ""
    page: int | None = None
    score: float = 0.0
    start: float | None = None
    end: float | None = None


class EvalEvent(Contract):
    """One step of an answer. The first event of a streamed answer has no text: the engine
    has started it. The last has ``finish_reason`` (and the sources)."""

    delta: str = ""
    tool_calls: list[ToolCallDelta] = []
    logprobs: list[TokenLogprob] = []
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason | None = None
    sources: list[Source] = []
    #: With ``finish_reason`` stop: the request's stop string the answer ended at (None when it
    #: ended otherwise, e.g. at the model's end-of-sequence token).
    stop_sequence: str | None = None
    #: On an answer's first event only: the served model that answers (its id in ``/v1/models``),
    #: so a front learns it without asking for the model list first.
    model: str | None = None


# --- models -----------------------------------------------------------------------------------
class ModelCapabilities(Contract):
    """What a model can do through this server; a request for more is a 400."""

    tools: bool = False
    constrained_decoding: bool = False
    logprobs: bool = True
    logit_bias: bool = True
    vision: bool = False
    tokenize: bool = True


class ModelInfo(Contract):
    """A served model: ``/v1/models`` and the operations endpoints read this."""

    id: str
    backend: BackendKind
    context_window: int
    created: int = 0
    owned_by: str = "h2oGPT"
    vocab_size: int | None = None
    modalities: list[Literal["text", "image"]] = msgspec.field(default_factory=lambda: ["text"])
    capabilities: ModelCapabilities = msgspec.field(default_factory=ModelCapabilities)
    #: For a remote backend: the server and the model it serves there.
    inference_server: str | None = None
    remote_model: str | None = None


class BackendHealth(Contract):
    model: str
    backend: BackendKind
    state: Literal["up", "down", "unknown"]
    error: str | None = None


class Health(Contract):
    ready: bool
    model: str
    models: list[str]
    active_requests: int
    backends: list[BackendHealth] = []


# --- operations -----------------------------------------------------------------------------
class CancelRequest(Contract):
    """Cancel the stream of this id (the client left while it was still queued)."""

    id: str


class HttpObservation(Contract):
    """One HTTP response a worker sent: its route template and status (for the metrics)."""

    route: str
    status: int


class RateHit(Contract):
    """One request against a rate limit (``limits``' notation: '10/second;100/minute')."""

    identity: str
    limit: str


class RateVerdict(Contract):
    """Whether the hit was allowed; the tightest limit, what remains of it, and when a slot
    frees (epoch seconds)."""

    allowed: bool
    limit: int = 0
    remaining: int = 0
    reset: float = 0.0


class MetricsText(Contract):
    """The Prometheus exposition of the engine's registry."""

    text: bytes


# --- the engine, as its clients see it ------------------------------------------------------
class Engine(Protocol):
    """The engine as the API workers reach it (src.ipc.client.EngineClient; a scripted fake
    in the unit tests): every method takes and answers contract messages."""

    def evaluate(self, request: EvaluateRequest) -> AsyncGenerator[EvalEvent, None]: ...

    async def models(self, timeout: float | None = 10) -> list[ModelInfo]: ...

    async def health(self, timeout: float | None = None) -> Health: ...

    async def tokenize(self, request: TokenizeRequest) -> TokenizeResult: ...

    async def detokenize(self, request: DetokenizeRequest) -> DetokenizeResult: ...

    async def logits(self, request: LogitsRequest) -> LogitsResult: ...

    async def chat_prompt(self, request: TokenizeRequest) -> ChatPrompt: ...

    async def stop_generation(self, request: StopRequest) -> Stopped: ...

    async def metrics(self) -> MetricsText: ...

    async def transcribe(self, request: TranscribeRequest) -> Transcription: ...

    def speech(self, request: SpeechRequest) -> AsyncGenerator[bytes, None]: ...

    async def generate_images(self, request: ImagesRequest) -> ImagesResult: ...

    async def media_info(self) -> MediaInfo: ...

    async def observe_http(self, observation: HttpObservation) -> None: ...

    async def rate_hit(self, hit: RateHit) -> RateVerdict: ...

    async def embed(self, request: EmbedRequest) -> EmbedResult: ...

    async def rerank(self, request: RerankRequest) -> RerankResult: ...

    async def moderate(self, request: ModerateRequest) -> ModerateResult: ...

    async def add_files(self, request: AddFilesRequest) -> IngestReport: ...

    async def add_text(self, request: AddTextRequest) -> IngestReport: ...

    async def list_sources(self, request: CollectionRequest) -> list[SourceInfo]: ...

    async def delete_sources(self, request: DeleteSourcesRequest) -> list[str]: ...

    async def list_collections(self, request: CollectionsRequest) -> list[CollectionInfo]: ...

    async def create_collection(self, request: CreateCollectionRequest) -> CollectionInfo: ...

    async def delete_collection(self, request: DeleteCollectionRequest) -> CollectionDeleted: ...

    async def model_state(self) -> ModelState: ...

    async def loadable_models(self) -> ModelNames: ...

    async def load_model(self, request: LoadModelRequest) -> ModelState: ...

    async def unload_model(self) -> ModelState: ...
