"""The engine's speech and image methods for the API workers (src/media.py services).

- ``transcribe`` (call): ``{data, filename, language?, prompt?, temperature?, task?}`` ->
  the transcription dict of :meth:`src.audio.stt.SpeechToText.transcribe`;
- ``speech`` (stream): ``{input, voice?, speed?, response_format?}`` -> encoded audio
  bytes, one item per synthesized sentence (bad input fails before the first item);
- ``generate_images`` (call): ``{prompt, n?, size?, model?, seed?}`` -> ``{model, images}``
  (PNG bytes);
- ``media_info`` (call): the STT model, the voices, the image models.

Each service runs on its own worker thread; these handlers only wait for it, so the IPC
connection threads and the LLM generation thread are never busy with speech or images.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from src.audio.stt import Task, TranscribeOptions
from src.images.service import ImageRequest
from src.ipc.server import IpcServer
from src.media import MediaServices


def _transcribe_options(args: dict[str, Any]) -> TranscribeOptions:
    task: Task = "translate" if args.get("task") == "translate" else "transcribe"
    return TranscribeOptions(
        language=args.get("language") or None, prompt=args.get("prompt") or None,
        temperature=float(args.get("temperature") or 0.0), task=task,
        word_timestamps=bool(args.get("word_timestamps", True)),
    )


def register_media_methods(server: IpcServer, media: MediaServices) -> None:
    """transcribe, speech (stream), generate_images and media_info."""

    def transcribe(args: dict[str, Any]) -> dict[str, Any]:
        return media.stt.transcribe(bytes(args.get("data") or b""), str(args.get("filename") or ""),
                                    _transcribe_options(args))

    def speech(args: dict[str, Any], cancel: threading.Event) -> Iterator[bytes]:
        return media.tts.synthesize(
            str(args.get("input") or ""), args.get("voice"), float(args.get("speed") or 1.0),
            str(args.get("response_format") or "mp3"), cancel,
        )

    def generate_images(args: dict[str, Any]) -> dict[str, Any]:
        return media.images.generate(ImageRequest(
            prompt=str(args.get("prompt") or ""), n=int(args.get("n") or 1), size=args.get("size"),
            model=args.get("model"), seed=args.get("seed"), steps=args.get("steps"),
            guidance_scale=args.get("guidance_scale"),
        ))

    server.register("transcribe", transcribe)
    server.register_stream("speech", speech)
    server.register("generate_images", generate_images)
    server.register("media_info", lambda args: media.info())
