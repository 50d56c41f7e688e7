"""Wire schemas of the speech and image endpoints: /v1/audio/* and /v1/images/generations.

Fields in the order of OpenAI's API reference; h2oGPT's extensions in one marked block.
Transcription requests are multipart forms, parsed into :class:`TranscriptionForm`.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from openai_server.protocol import OpenAIBaseModel

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
TranscriptFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]


# --- speech to text ---------------------------------------------------------------------
class TranscriptionForm(OpenAIBaseModel):
    """The form fields of POST /v1/audio/transcriptions and /translations (besides ``file``)."""

    model: str | None = Field(None, description="Accepted for compatibility; the server's "
                              "speech-to-text model (--stt_model) answers.")
    language: str | None = Field(None, description="ISO-639-1 language of the audio (transcriptions).")
    prompt: str | None = Field(None, description="Text to guide the model's style or spelling.")
    response_format: TranscriptFormat = Field("json", description="json, text, srt, verbose_json or vtt.")
    temperature: float = Field(0.0, ge=0.0, le=1.0, description="Sampling temperature, 0 to 1.")
    timestamp_granularities: list[Literal["word", "segment"]] = Field(
        ["segment"], description="verbose_json: word and/or segment timings."
    )


class TranscriptionWord(BaseModel):
    word: str
    start: float
    end: float


class TranscriptionSegment(BaseModel):
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


class Transcription(BaseModel):
    """``response_format=json``."""

    text: str


class TranscriptionVerbose(BaseModel):
    """``response_format=verbose_json``: segments and, with word granularity, words."""

    task: str
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegment] | None = None
    words: list[TranscriptionWord] | None = None


# --- text to speech ------------------------------------------------------------------------
class SpeechRequest(OpenAIBaseModel):
    """POST /v1/audio/speech: the audio streams out a sentence at a time."""

    model: str | None = Field(None, description="Accepted for compatibility (tts-1, ...); piper speaks.")
    input: str = Field(..., description="The text to speak (at most 4096 characters).")
    voice: str = Field("alloy", description="A piper voice's name (GET /v1/audio/voices) or an "
                       "OpenAI voice name, which speaks with the default voice.")
    instructions: str | None = Field(None, description="Accepted for compatibility; ignored.")
    response_format: SpeechFormat = Field("mp3", description="mp3, opus, aac, flac, wav or pcm "
                                          "(16-bit little-endian mono at 24 kHz).")
    speed: float = Field(1.0, ge=0.25, le=4.0, description="Speed, 0.25 to 4.0.")


class Voice(BaseModel):
    id: str = Field(description="What /v1/audio/speech takes as `voice`.")
    name: str


class VoiceList(BaseModel):
    """GET /v1/audio/voices in the shape Open WebUI reads."""

    voices: list[Voice]


class AudioModel(BaseModel):
    id: str = Field(description="Accepted as `model` by the endpoint of its task.")
    name: str
    object: Literal["model"] = "model"
    owned_by: str = "h2oGPT"
    task: Literal["speech-to-text", "text-to-speech"]


class AudioModelList(BaseModel):
    """GET /v1/audio/models: the speech models that are on; ``models`` is what Open WebUI
    reads, ``data`` the same list in OpenAI's list shape."""

    object: Literal["list"] = "list"
    data: list[AudioModel]
    models: list[AudioModel]


# --- images -----------------------------------------------------------------------------------
class ImageGenerationRequest(OpenAIBaseModel):
    """POST /v1/images/generations over a local diffusers model (--visible_image_models)."""

    prompt: str = Field(..., description="What to draw.")
    model: str | None = Field(None, description="An image model's folder name; default: the first.")
    n: int = Field(1, ge=1, le=10, description="How many images, 1 to 10.")
    quality: str | None = Field(None, description="Accepted for compatibility; ignored.")
    response_format: Literal["url", "b64_json"] = Field(
        "b64_json", description="b64_json, or url: a data: URL (this server hosts no files).")
    size: str | None = Field(None, description="WIDTHxHEIGHT in multiples of 8, or auto (the model's).")
    style: str | None = Field(None, description="Accepted for compatibility; ignored.")
    user: str | None = None
    # --- h2oGPT extensions ---
    seed: int | None = Field(None, ge=0, description="Random seed: the same seed gives the same image.")
    num_inference_steps: int | None = Field(None, ge=1, le=200, description="Denoising steps.")
    guidance_scale: float | None = Field(None, ge=0.0, le=50.0, description="Classifier-free guidance.")


class ImageData(BaseModel):
    b64_json: str | None = None
    url: str | None = None


class ImagesResponse(BaseModel):
    created: int = Field(default_factory=lambda: int(time.time()))
    data: list[ImageData]
