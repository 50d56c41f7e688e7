"""The engine's speech and image methods for the API workers (src/media.py services), typed
by the contract (src/contract/):

- ``transcribe`` (call): :class:`TranscribeRequest` -> :class:`Transcription`;
- ``speech`` (stream): :class:`SpeechRequest` -> encoded audio bytes, one item per
  synthesized sentence (bad input fails before the first item);
- ``generate_images`` (call): :class:`ImagesRequest` -> :class:`ImagesResult` (PNG bytes);
- ``media_info`` (call): :class:`MediaInfo`, what is on.

Each service runs on its own worker thread; these handlers only wait for it, so the IPC
connection threads and the LLM generation thread are never busy with speech or images.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import msgspec

from src.audio.stt import TranscribeOptions
from src.contract import (
    Empty,
    ImagesRequest,
    ImagesResult,
    MediaInfo,
    SpeechRequest,
    TranscribeRequest,
    Transcription,
)
from src.ipc.server import IpcServer
from src.media import MediaServices


def register_media_methods(server: IpcServer, media: MediaServices) -> None:
    """transcribe, speech (stream), generate_images and media_info."""

    def transcribe(request: TranscribeRequest) -> Transcription:
        options = TranscribeOptions(language=request.language or None, prompt=request.prompt or None,
                                    temperature=request.temperature, task=request.task,
                                    word_timestamps=request.word_timestamps)
        return msgspec.convert(media.stt.transcribe(request.data, request.filename, options), Transcription)

    def speech(request: SpeechRequest, cancel: threading.Event) -> Iterator[bytes]:
        return media.tts.synthesize(request.input, request.voice, request.speed, request.response_format, cancel)

    def generate_images(request: ImagesRequest) -> ImagesResult:
        result = media.images.generate(request)
        return ImagesResult(model=str(result["model"]), images=[bytes(i) for i in result["images"]])

    server.register_typed("transcribe", TranscribeRequest, transcribe)
    server.register_typed_stream("speech", SpeechRequest, speech)
    server.register_typed("generate_images", ImagesRequest, generate_images)
    server.register_typed("media_info", Empty, lambda _: msgspec.convert(media.info(), MediaInfo))
