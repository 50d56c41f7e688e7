"""Audio in and out with PyAV (FFmpeg's libraries, installed with faster-whisper).

:func:`decode` turns an uploaded file of any common format into 16 kHz mono float32
samples for Whisper; :class:`StreamEncoder` turns int16 speech into a file of the asked
format piece by piece, so that each sentence's bytes can leave as soon as it is spoken.
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np

from src.errors import AudioInvalidError, UnsupportedFormatError

log = logging.getLogger(__name__)

WHISPER_RATE = 16000
#: File types accepted for transcription (by name; the content decides in the end).
INPUT_FORMATS = ("wav", "mp3", "mpga", "mpeg", "m4a", "mp4", "aac", "ogg", "oga", "opus", "webm",
                 "flac")
#: Output formats of /v1/audio/speech: container, codec, sample rate (None: the voice's).
OUTPUT_FORMATS: dict[str, tuple[str, str, int | None]] = {
    "mp3": ("mp3", "libmp3lame", None),
    "opus": ("ogg", "libopus", 48000),
    "aac": ("adts", "aac", None),
    "flac": ("flac", "flac", None),
    "wav": ("wav", "pcm_s16le", None),
    "pcm": ("s16le", "pcm_s16le", 24000),
}


def check_input_name(filename: str) -> None:
    """Refuse a file whose extension names a format we do not decode (no extension: try it)."""
    suffix = PurePath(filename or "").suffix.lower().lstrip(".")
    if suffix and suffix not in INPUT_FORMATS:
        raise UnsupportedFormatError(
            f"unsupported file format '.{suffix}': send one of {', '.join(INPUT_FORMATS)}", param="file"
        )


def decode(data: bytes) -> np.ndarray:
    """16 kHz mono float32 samples of an audio file's bytes; AudioInvalidError if there are none."""
    import av
    from faster_whisper.audio import decode_audio

    if not data:
        raise AudioInvalidError("the audio file is empty")
    try:
        samples = decode_audio(io.BytesIO(data), sampling_rate=WHISPER_RATE)
    except (av.FFmpegError, ValueError, IndexError, StopIteration) as exc:
        log.debug("cannot decode audio: %s", exc)
        raise AudioInvalidError(
            "the file is not audio in a supported format (wav, mp3, m4a, ogg/opus, webm, flac)"
        ) from None
    if samples.size == 0:
        raise AudioInvalidError("the audio file holds no sound")
    return np.asarray(samples, dtype=np.float32)


class _Sink:
    """A write-only, unseekable file: FFmpeg's muxers then write a streamable layout."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def seekable(self) -> bool:
        return False

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


def wav_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header of unknown length (sizes 0xFFFFFFFF), as streamed WAV has."""
    unknown = 0xFFFFFFFF
    return (b"RIFF" + struct.pack("<I", unknown) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", unknown))


@dataclass
class StreamEncoder:
    """Encodes int16 mono chunks into ``fmt``; ``encode`` returns the bytes ready so far."""

    fmt: str
    sample_rate: int

    def __post_init__(self) -> None:
        import av

        if self.fmt not in OUTPUT_FORMATS:
            raise UnsupportedFormatError(
                f"response_format must be one of {', '.join(OUTPUT_FORMATS)}", param="response_format"
            )
        container, codec, rate = OUTPUT_FORMATS[self.fmt]
        self._raw = self.fmt in ("wav", "pcm")
        self._out_rate = rate or self.sample_rate
        self._pending = wav_header(self.sample_rate) if self.fmt == "wav" else b""
        if self._raw:
            self._resampler = (av.AudioResampler(format="s16", layout="mono", rate=self._out_rate)
                               if self._out_rate != self.sample_rate else None)
            return
        self._sink = _Sink()
        self._container = av.open(self._sink, mode="w", format=container,
                                  options={"page_duration": "100000"} if container == "ogg" else {})
        self._stream: Any = self._container.add_stream(codec, rate=self._out_rate, layout="mono")

    def _frame(self, samples: np.ndarray) -> Any:
        import av

        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        return frame

    def encode(self, samples: np.ndarray) -> bytes:
        """Encode the next int16 samples; returns the bytes the format can give out now."""
        samples = np.ascontiguousarray(samples, dtype=np.int16)
        out, self._pending = self._pending, b""
        if self._raw:
            return out + self._raw_bytes(samples)
        for packet in self._stream.encode(self._frame(samples)):
            self._container.mux(packet)
        return out + self._sink.take()

    def finish(self) -> bytes:
        """Flush the encoder and close the file; the last bytes."""
        out, self._pending = self._pending, b""
        if self._raw:
            return out + (self._flush_resampler() if self._resampler else b"")
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return out + self._sink.take()

    def _raw_bytes(self, samples: np.ndarray) -> bytes:
        if self._resampler is None:
            return samples.astype("<i2").tobytes()
        frames = self._resampler.resample(self._frame(samples))
        return b"".join(f.to_ndarray().astype("<i2").tobytes() for f in frames)

    def _flush_resampler(self) -> bytes:
        assert self._resampler is not None
        return b"".join(f.to_ndarray().astype("<i2").tobytes() for f in self._resampler.resample(None))
