"""POST /v1/audio/transcriptions, /v1/audio/translations and /v1/audio/speech; GET /v1/audio/voices and /v1/audio/models."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from openai_server.errors import InvalidRequestError, client_location
from openai_server.protocol_media import AudioModelList, SpeechRequest, TranscriptionForm, VoiceList
from openai_server.routers.deps import audio_service, identity

router = APIRouter(tags=["audio"])

TRANSCRIBE_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary"},
                   **TranscriptionForm.model_json_schema()["properties"]},
}}}}}


async def _transcription_form(request: Request) -> tuple[bytes, str, TranscriptionForm]:
    """The uploaded file, its name and the other fields of a transcription form."""
    try:
        form = await request.form()
    except ValueError:
        raise InvalidRequestError("send multipart/form-data with a 'file' part") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequestError("file: an audio file is required", param="file")
    fields: dict[str, object] = {k: v for k, v in form.items() if isinstance(v, str) and k != "file"}
    granularities = [g for g in form.getlist("timestamp_granularities[]") if isinstance(g, str)]
    fields.pop("timestamp_granularities[]", None)
    if granularities:
        fields["timestamp_granularities"] = granularities
    try:
        parsed = TranscriptionForm.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(client_location(first["loc"], fields)) or None
        raise InvalidRequestError(f"{param}: {first['msg']}", param=param) from None
    return await upload.read(), upload.filename or "", parsed


@router.post("/audio/transcriptions", openapi_extra=TRANSCRIBE_BODY)
async def create_transcription(request: Request) -> Response:
    """Speech to text with Whisper (faster-whisper): json, text, srt, vtt or verbose_json
    (segments, and words with ``timestamp_granularities[]=word``)."""
    identity(request)
    data, filename, form = await _transcription_form(request)
    return await audio_service(request).transcribe(data, filename, form)


@router.post("/audio/translations", openapi_extra=TRANSCRIBE_BODY)
async def create_translation(request: Request) -> Response:
    """Speech in any language the model knows to English text."""
    identity(request)
    data, filename, form = await _transcription_form(request)
    return await audio_service(request).transcribe(data, filename, form, task="translate")


@router.post("/audio/speech")
async def create_speech(body: SpeechRequest, request: Request) -> StreamingResponse:
    """Text to speech with piper, streamed: each sentence's audio leaves once it is spoken."""
    identity(request)
    return await audio_service(request).speech(body)


@router.get("/audio/voices")
async def list_voices(request: Request) -> VoiceList:
    """The voices /v1/audio/speech speaks with, as ``{"voices": [{"id", "name"}]}`` (the shape
    Open WebUI reads; OpenAI's voice names map to the first)."""
    return await audio_service(request).voices()


@router.get("/audio/models")
async def list_audio_models(request: Request) -> AudioModelList:
    """The speech models that are on: ``{"models": [{"id", "name", "task"}], "data": [...]}``."""
    return await audio_service(request).models()
