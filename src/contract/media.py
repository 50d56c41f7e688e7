"""The contract's speech and image services (src/contract/__init__.py re-exports every name
here): transcription, speech synthesis, image generation, and what is on."""

from __future__ import annotations

from typing import Literal

from src.contract.base import Contract


class TranscribeRequest(Contract):
    """An audio file to transcribe (or, ``task="translate"``, to translate to English)."""

    data: bytes
    filename: str = ""
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    task: Literal["transcribe", "translate"] = "transcribe"
    word_timestamps: bool = True


class Word(Contract):
    word: str
    start: float
    end: float


class Segment(Contract):
    """A segment of a transcription, with Whisper's own figures."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[Word]


class Transcription(Contract):
    task: str
    language: str | None
    duration: float
    text: str
    segments: list[Segment]
    words: list[Word]
    model: str


class SpeechRequest(Contract):
    """Text to speak; the answer streams encoded audio, a piece per sentence."""

    input: str
    voice: str | None = None
    speed: float = 1.0
    response_format: str = "mp3"


class ImagesRequest(Contract):
    prompt: str
    n: int = 1
    size: str | None = None
    model: str | None = None
    seed: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None


class ImagesResult(Contract):
    """PNG images, and the model that made them."""

    model: str
    images: list[bytes]


class MediaInfo(Contract):
    """What is on: the speech-to-text model, the voices, the image models."""

    stt: str | None = None
    voices: list[str] = []
    image_models: list[str] = []
