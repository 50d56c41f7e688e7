"""Serving of the speech and image endpoints over the engine's media methods (src/ipc/media.py).

Routers hand validated requests here. Speech streams: the first chunk is awaited before
the response starts, so bad input (empty text, unknown voice) still gets a 4xx envelope;
after that, each synthesized sentence's bytes go out as they come.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from openai_server.protocol_media import (
    AudioModel,
    AudioModelList,
    ImageData,
    ImageGenerationRequest,
    ImagesResponse,
    SpeechRequest,
    Transcription,
    TranscriptionForm,
    TranscriptionVerbose,
    Voice,
    VoiceList,
)
from src import contract
from src.contract import Engine
from src.errors import AudioInvalidError, UploadTooLargeError

log = logging.getLogger(__name__)

#: The Content-Type of each /v1/audio/speech response_format (the encoders are src/audio/codecs.py).
MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
               "wav": "audio/wav", "pcm": "audio/pcm"}


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def subtitles(segments: list[dict[str, Any]], kind: str) -> str:
    """SubRip (``srt``) or WebVTT (``vtt``) cues, one per segment."""
    if kind == "srt":
        cues = [f"{i}\n{_timestamp(s['start'], ',')} --> {_timestamp(s['end'], ',')}\n{s['text'].strip()}\n"
                for i, s in enumerate(segments, 1)]
        return "\n".join(cues)
    cues = [f"{_timestamp(s['start'], '.')} --> {_timestamp(s['end'], '.')}\n{s['text'].strip()}\n"
            for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues)


class AudioService:
    """Transcriptions, translations and speech over the engine's ``transcribe`` / ``speech``."""

    def __init__(self, client: Engine, max_audio_bytes: int) -> None:
        self.client = client
        self.max_audio_bytes = max_audio_bytes

    async def transcribe(self, data: bytes, filename: str, form: TranscriptionForm,
                         task: str = "transcribe") -> Response:
        if len(data) > self.max_audio_bytes:
            raise UploadTooLargeError(
                f"the audio file is {len(data)} bytes; the limit is {self.max_audio_bytes} "
                "(--max_audio_bytes)")
        if not data:
            raise AudioInvalidError("the audio file is empty")
        asked = contract.TranscribeRequest(
            data=data, filename=filename, language=form.language if task == "transcribe" else None,
            prompt=form.prompt, temperature=form.temperature, task="translate" if task == "translate" else "transcribe",
            word_timestamps=form.response_format == "verbose_json" and "word" in form.timestamp_granularities)
        result = await self.client.transcribe(asked)
        fmt = form.response_format
        if fmt == "text":
            return PlainTextResponse(result.text + "\n")
        if fmt in ("srt", "vtt"):
            return PlainTextResponse(subtitles(msgspec.to_builtins(result.segments), fmt),
                                     media_type="text/vtt" if fmt == "vtt" else "text/plain")
        if fmt == "verbose_json":
            full = msgspec.to_builtins(result)
            verbose = TranscriptionVerbose.model_validate({
                **full,
                "segments": full["segments"] if "segment" in form.timestamp_granularities else None,
                "words": full["words"] if "word" in form.timestamp_granularities else None,
            })
            return JSONResponse(verbose.model_dump(mode="json", exclude_none=True))
        return JSONResponse(Transcription(text=result.text).model_dump(mode="json"))

    async def speech(self, request: SpeechRequest) -> StreamingResponse:
        chunks = self.client.speech(contract.SpeechRequest(
            input=request.input, voice=request.voice, speed=request.speed, response_format=request.response_format))
        try:
            first = await anext(chunks)  # errors before the first sentence get their 4xx
        except StopAsyncIteration:
            first = b""

        async def body() -> AsyncIterator[bytes]:
            try:
                yield bytes(first)
                async for chunk in chunks:
                    yield bytes(chunk)
            finally:
                await chunks.aclose()  # the client left early: the engine stops speaking

        return StreamingResponse(body(), media_type=MEDIA_TYPES[request.response_format],
                                 headers={"Content-Disposition": f"inline; filename=speech.{request.response_format}"})

    async def voices(self) -> VoiceList:
        info = await self.client.media_info()
        return VoiceList(voices=[Voice(id=v, name=v) for v in info.voices])

    async def models(self) -> AudioModelList:
        """The speech-to-text model and the text-to-speech engine, those that are on."""
        info = await self.client.media_info()
        models = []
        if info.stt:
            models.append(AudioModel(id=info.stt, name=f"{info.stt} (faster-whisper)",
                                     task="speech-to-text"))
        if info.voices:
            models.append(AudioModel(id="piper", name="piper (voices: GET /v1/audio/voices)", task="text-to-speech"))
        return AudioModelList(data=models, models=models)


class ImageService:
    """POST /v1/images/generations over the engine's ``generate_images``."""

    def __init__(self, client: Engine) -> None:
        self.client = client

    async def generate(self, request: ImageGenerationRequest) -> ImagesResponse:
        result = await self.client.generate_images(contract.ImagesRequest(
            prompt=request.prompt, n=request.n, size=request.size, model=request.model, seed=request.seed,
            steps=request.num_inference_steps, guidance_scale=request.guidance_scale))
        encoded = [base64.b64encode(png).decode() for png in result.images]
        if request.response_format == "url":
            return ImagesResponse(data=[ImageData(url="data:image/png;base64," + b) for b in encoded])
        return ImagesResponse(data=[ImageData(b64_json=b) for b in encoded])
