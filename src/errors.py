"""Domain errors with stable codes, defined once for the engine, documents and the API edge.

Every error that the product reports to a caller is a :class:`DomainError` with a ``code``
(a short snake_case string, OpenAI's ``error.code``) and, where one parameter is to
blame, a ``param``. The code, not the class name, crosses the IPC (``to_payload`` /
``from_payload``) and the API maps codes onto HTTP statuses
(``openai_server/errors.py``), so renaming a class never changes a status. Messages are
written for users: no internals.

To add an error: subclass the nearest class here with a new ``code`` and give the code a
status in ``openai_server/errors.py`` (a test fails for a code without one).
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of the errors callers see; ``code`` is stable, ``param`` names the culprit."""

    code: ClassVar[str] = "internal_error"
    default_param: ClassVar[str | None] = None

    def __init__(self, message: str = "", param: str | None = None) -> None:
        super().__init__(message or type(self).__doc__ or self.code)
        self.message = str(self.args[0])
        self.param = param if param is not None else self.default_param


# --- requests -----------------------------------------------------------------------------
class InvalidParamsError(DomainError, ValueError):
    """The request's parameters are wrong; the message says which and why."""

    code = "invalid_parameter"


class UnsupportedFeatureError(InvalidParamsError):
    """The chosen model or backend cannot do what the request asks."""

    code = "unsupported_feature"


class UnsupportedParameterError(InvalidParamsError):
    """The chosen model's backend has no such sampler (or parameter); ``param`` names it."""

    code = "unsupported_parameter"


class UnknownModelError(DomainError):
    """No served model has that name."""

    code = "model_not_found"
    default_param = "model"


# --- the engine -----------------------------------------------------------------------
class EngineError(DomainError):
    """The engine failed to answer."""

    code = "engine_error"


class ContextLengthError(EngineError):
    """The prompt does not fit the model's context window."""

    code = "context_length_exceeded"
    default_param = "messages"


class QueueTimeoutError(EngineError):
    """The request waited longer than --max_queue_time for the engine."""

    code = "queue_timeout"


class EngineUnavailableError(EngineError):
    """The engine is stopped, not loaded, or not reachable."""

    code = "engine_unavailable"


class NoModelLoadedError(EngineUnavailableError):
    """No model is loaded (it was unloaded): /v1/internal/model/load loads one."""

    code = "model_not_loaded"


class ModelLoadError(InvalidParamsError):
    """The model asked for did not load (a broken or unreadable file); the one served is kept."""

    code = "model_load_failed"
    default_param = "model_name"


class RemoteUnavailableError(EngineUnavailableError):
    """The remote inference server cannot be reached, or it failed; the message names it."""

    code = "remote_unavailable"


class RemoteTimeoutError(EngineError):
    """The remote inference server did not answer in time; the message names it."""

    code = "remote_timeout"


class RemoteRejectedError(InvalidParamsError):
    """The remote inference server refused the request (a 4xx); its message is passed on."""

    code = "remote_rejected"


# --- document Q&A ---------------------------------------------------------------------------
class DocQAError(DomainError):
    """Base of document Q&A errors; messages are safe to show to users."""

    code = "documents_error"


class UnknownCollectionError(DocQAError):
    """No collection of that name is visible to the user."""

    code = "collection_not_found"


class CollectionExistsError(DocQAError):
    """A collection of that name already exists."""

    code = "collection_exists"


class InvalidCollectionNameError(DocQAError):
    """The name is not a valid collection name."""

    code = "invalid_collection_name"


class PermissionDeniedError(DocQAError):
    """The user may not change this collection (e.g. --allow_upload_to_user_data=False)."""

    code = "upload_not_allowed"


class DocumentsDisabledError(DocQAError):
    """Document Q&A is turned off on this server."""

    code = "documents_disabled"


class EmbeddingModelMismatch(DocQAError):
    """The collection was built with another embedding model than the one loaded."""

    code = "embedding_model_mismatch"


class VectorStoreUnavailableError(DocQAError):
    """The Chroma server (--chroma_server) cannot be reached."""

    code = "vector_store_unavailable"


# --- speech and images ----------------------------------------------------------------------
class MediaDisabledError(DomainError):
    """The speech or image feature is off on this server; the message names the flag (and
    each subclass's code names it too: ``feature_off_<flag>``; the API answers 501)."""

    code = "feature_disabled"


class SpeechToTextOffError(MediaDisabledError):
    """Speech to text is off on this server (--enable_stt=False)."""

    code = "feature_off_enable_stt"


class TextToSpeechOffError(MediaDisabledError):
    """Text to speech is off on this server (--enable_tts=False)."""

    code = "feature_off_enable_tts"


class ImageGenerationOffError(MediaDisabledError):
    """Image generation is off on this server (no --visible_image_models)."""

    code = "feature_off_visible_image_models"


class AudioInvalidError(InvalidParamsError):
    """The audio is empty, garbage, or has no sound to work on."""

    code = "audio_invalid"
    default_param = "file"


class UnsupportedFormatError(InvalidParamsError):
    """The file or the requested output is in a format this server does not handle."""

    code = "unsupported_format"


class UploadTooLargeError(InvalidParamsError):
    """The uploaded file is larger than the documented limit."""

    code = "upload_too_large"
    default_param = "file"


class UnknownVoiceError(InvalidParamsError):
    """No text-to-speech voice has that name."""

    code = "voice_not_found"
    default_param = "voice"


def _all_subclasses(cls: type[DomainError]) -> list[type[DomainError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def codes() -> dict[str, type[DomainError]]:
    """Every stable code and its class (classes defined anywhere that subclass DomainError)."""
    return {cls.code: cls for cls in _all_subclasses(DomainError)}


def to_payload(exc: BaseException) -> dict[str, Any]:
    """How an exception crosses a process boundary: ``{code, message, param}``.

    Domain errors keep their code; a ValueError or a pydantic validation error is the
    caller's fault (``invalid_parameter``); anything else is a bug, reported without
    its internals.
    """
    if isinstance(exc, DomainError):
        return {"code": exc.code, "message": exc.message, "param": exc.param}
    if isinstance(exc, ValueError):  # pydantic's ValidationError is a ValueError too
        return {"code": InvalidParamsError.code, "message": str(exc) or "invalid parameters", "param": None}
    return {"code": DomainError.code, "message": f"internal error ({type(exc).__name__})", "param": None}


def from_payload(payload: dict[str, Any]) -> DomainError:
    """The exception to raise for a payload made by :func:`to_payload`."""
    cls = codes().get(str(payload.get("code") or ""), DomainError)
    return cls(str(payload.get("message") or ""), payload.get("param"))
