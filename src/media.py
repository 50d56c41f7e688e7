"""The engine process's speech and image services, built once from the Settings.

``MediaServices.from_settings(settings)`` gives speech to text (unless ``--enable_stt=False``),
text to speech (unless ``--enable_tts=False``) and image generation (when
``--visible_image_models`` names models). Each service has its own worker thread and loads
its models on first use. The OpenAI API reaches them through src/ipc/media.py, the UI
calls them in-process; a service that is off answers ``feature_disabled`` naming its flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from src.audio.stt import SpeechToText
from src.audio.tts import TextToSpeech
from src.errors import SpeechToTextOffError, TextToSpeechOffError
from src.images.service import ImageGenerator
from src.settings import Settings


@dataclass
class MediaServices:
    """Speech to text, text to speech and images; None where a service is off."""

    stt_service: SpeechToText | None = None
    tts_service: TextToSpeech | None = None
    image_service: ImageGenerator | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaServices:
        """The services the flags turn on; audio files dropped into collections are then
        transcribed by this speech-to-text service (src.docqa.loaders.use_transcriber)."""
        from src.docqa.loaders import use_transcriber

        stt = (SpeechToText(settings.stt_model or None, cpu_threads=settings.resolved_threads())
               if settings.enable_stt else None)
        use_transcriber(stt.transcribe if stt else None)
        return cls(stt, TextToSpeech(settings.tts_model) if settings.enable_tts else None,
                   ImageGenerator(settings.visible_image_models))

    @property
    def stt(self) -> SpeechToText:
        if self.stt_service is None:
            raise SpeechToTextOffError("speech to text is off on this server (--enable_stt=False)")
        return self.stt_service

    @property
    def tts(self) -> TextToSpeech:
        if self.tts_service is None:
            raise TextToSpeechOffError("text to speech is off on this server (--enable_tts=False)")
        return self.tts_service

    @property
    def images(self) -> ImageGenerator:
        if self.image_service is None:
            return ImageGenerator([])  # resolve() says how to turn image generation on
        return self.image_service

    def info(self) -> dict[str, object]:
        """What is on: the STT model's name, the voices, the image models."""
        return {
            "stt": self.stt_service.name if self.stt_service else None,
            "voices": self.tts_service.voices() if self.tts_service else [],
            "image_models": self.image_service.models() if self.image_service else [],
        }

    def close(self) -> None:
        for service in (self.stt_service, self.tts_service, self.image_service):
            if service is not None:
                service.close()
