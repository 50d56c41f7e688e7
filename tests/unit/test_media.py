"""Speech and image services without servers: flags, codecs, worker threads, refusals."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from openai_server.serving_media import subtitles
from src.audio.codecs import OUTPUT_FORMATS, StreamEncoder, check_input_name, decode
from src.audio.tts import DEFAULT_VOICE, TextToSpeech
from src.audio.worker import Worker
from src.errors import (
    AudioInvalidError,
    InvalidParamsError,
    MediaDisabledError,
    UnknownVoiceError,
    UnsupportedFormatError,
)
from src.images.service import parse_size
from src.media import MediaServices
from src.settings import build_settings
from src.settings_checks import SettingsError


# --- flags ---------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, flag, words", [
    ({"stt_model": "/no/such/whisper"}, "--stt_model", "model.bin"),
    ({"tts_model": "/no/such/voice.onnx"}, "--tts_model", "piper voice"),
    ({"visible_image_models": ["/no/such/pipeline"]}, "--visible_image_models", "model_index.json"),
    ({"max_audio_bytes": 10}, "--max_audio_bytes", "greater than or equal"),
])
def test_bad_media_flags_name_the_flag(flags, flag, words):
    with pytest.raises(SettingsError) as info:
        build_settings(flags)
    assert info.value.flag == flag and words in info.value.message


def test_one_voice_path_is_a_list_and_needs_its_config(tmp_path):
    voice = tmp_path / "en_US-test-low.onnx"
    voice.write_bytes(b"onnx")
    with pytest.raises(SettingsError, match="config"):
        build_settings({"tts_model": str(voice)})
    (tmp_path / "en_US-test-low.onnx.json").write_text("{}")
    assert build_settings({"tts_model": str(voice)}).tts_model == [str(voice)]
    assert TextToSpeech([str(voice)]).voices() == [DEFAULT_VOICE, "en_US-test-low"]


def test_disabled_services_say_which_flag_turns_them_on():
    media = MediaServices.from_settings(build_settings({"enable_stt": False, "enable_tts": False}))
    with pytest.raises(MediaDisabledError, match="--enable_stt"):
        media.stt.transcribe(b"RIFF")
    with pytest.raises(MediaDisabledError, match="--enable_tts"):
        media.tts.synthesize("Hello.")
    with pytest.raises(MediaDisabledError, match="--visible_image_models") as info:
        media.images.resolve(None)
    assert info.value.code == "feature_off_visible_image_models"
    assert media.info() == {"stt": None, "voices": [], "image_models": []}


# --- codecs ----------------------------------------------------------------------------------
def test_decode_refuses_empty_and_garbage():
    with pytest.raises(AudioInvalidError, match="empty"):
        decode(b"")
    with pytest.raises(AudioInvalidError, match="not audio"):
        decode(b"\x00garbage" * 200)


def test_unsupported_extensions_are_refused_by_name():
    check_input_name("talk.m4a")
    check_input_name("no_extension")
    with pytest.raises(UnsupportedFormatError, match=r"'\.txt'"):
        check_input_name("notes.txt")


@pytest.mark.parametrize("fmt", [f for f in OUTPUT_FORMATS if f != "pcm"])
def test_stream_encoder_output_decodes_to_the_same_length(fmt):
    rate = 22050
    tone = (np.sin(np.arange(rate) * 2 * np.pi * 440 / rate) * 8000).astype(np.int16)
    encoder = StreamEncoder(fmt, rate)
    parts = [encoder.encode(tone), encoder.encode(tone), encoder.finish()]
    seconds = decode(b"".join(parts)).size / 16000
    assert abs(seconds - 2.0) < 0.1
    assert parts[0] or fmt == "opus"  # bytes leave before the end (ogg pages may wait)


def test_unknown_output_format_is_refused():
    with pytest.raises(UnsupportedFormatError):
        StreamEncoder("mp4", 22050)


# --- worker -------------------------------------------------------------------------------------
def test_worker_runs_jobs_on_its_own_thread_and_streams_items_as_made():
    worker = Worker("test-worker")
    assert worker.run(lambda: threading.current_thread().name) == "test-worker"
    produced: list[int] = []

    def items():
        for i in range(3):
            produced.append(i)
            yield i

    stream = worker.stream(items)
    assert next(stream) == 0
    stream.close()
    assert worker.run(lambda: 42) == 42  # a stream left early does not block the worker
    assert produced[:1] == [0]
    with pytest.raises(ZeroDivisionError):
        worker.run(lambda: 1 // 0)
    worker.close()


# --- text to speech and images: refusals before any work ------------------------------------
def test_tts_refuses_bad_input_before_speaking():
    tts = TextToSpeech()
    assert tts.resolve("alloy") == tts.resolve("Nova") == DEFAULT_VOICE
    with pytest.raises(UnknownVoiceError, match="'robot'") as info:
        tts.resolve("robot")
    assert info.value.param == "voice"
    for text, speed, param in (("", 1.0, "input"), ("   ", 1.0, "input"), ("Hi.", 9.0, "speed")):
        with pytest.raises(InvalidParamsError) as bad:
            tts.synthesize(text, speed=speed)
        assert bad.value.param == param


def test_image_sizes():
    assert parse_size("auto") is None and parse_size("512x256") == (512, 256)
    for bad in ("512", "500x500", "0x8", "4096x4096"):
        with pytest.raises(InvalidParamsError):
            parse_size(bad)


def test_subtitles():
    segments = [{"start": 0.0, "end": 1.5, "text": " Hello."}, {"start": 61.25, "end": 3725.0, "text": " Bye."}]
    assert subtitles(segments, "srt") == ("1\n00:00:00,000 --> 00:00:01,500\nHello.\n\n"
                                          "2\n00:01:01,250 --> 01:02:05,000\nBye.\n")
    assert subtitles(segments, "vtt").startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello.\n")


def test_audio_documents_cover_time_spans(tmp_path):
    from gradio_ui.chat import render_sources
    from src.docqa.loaders import LoadError, load_file, use_transcriber

    segments = [{"start": float(i * 8), "end": float(i * 8 + 7), "text": f" Sentence {i}."} for i in range(6)]
    path = tmp_path / "talk.mp3"
    path.write_bytes(b"audio")
    try:
        use_transcriber(lambda data, name: {"segments": segments} if data == b"audio" else {})
        docs = load_file(path)
        assert [(d.metadata["start"], d.metadata["end"]) for d in docs] == [(0.0, 15.0), (16.0, 31.0),
                                                                             (32.0, 47.0)]
        assert docs[1].page_content == "Sentence 2. Sentence 3."
        use_transcriber(None)
        with pytest.raises(LoadError, match="--enable_stt"):
            load_file(path)
    finally:
        use_transcriber(None)
    html = render_sources([{"source": "talk.mp3", "start": 16.0, "end": 75.5, "content": "x", "score": 0.5}])
    assert "talk.mp3" in html and "0:16–1:15" in html


@pytest.mark.parametrize("container, codec", [("mp4", "aac"), ("webm", "libopus"), ("ogg", "libopus"),
                                               ("mp3", "libmp3lame"), ("flac", "flac"), ("wav", "pcm_s16le")])
def test_common_upload_formats_decode(container, codec):
    """m4a (aac in mp4), webm and ogg (opus), mp3, flac and wav files as other tools write them."""
    import io

    import av

    rate = 48000 if codec == "libopus" else 44100
    tone = (np.sin(np.arange(rate) * 2 * np.pi * 440 / rate) * 8000).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    assert abs(decode(buffer.getvalue()).size / 16000 - 1.0) < 0.1


def test_an_extra_piper_voice_is_listed_and_speaks(tmp_path):
    """--tts_model voices are named by their file names and speak through the same stream."""
    import shutil

    from src.audio.tts import default_voice_path

    source = default_voice_path()
    voice = tmp_path / "en_US-copy-medium.onnx"
    shutil.copy(source, voice)
    shutil.copy(str(source) + ".json", str(voice) + ".json")
    tts = TextToSpeech([str(voice)])
    assert tts.voices() == [DEFAULT_VOICE, "en_US-copy-medium"]
    chunks = list(tts.synthesize("One sentence. And another one.", voice="en_US-copy-medium", fmt="wav"))
    assert len(chunks) >= 2 and chunks[0][:4] == b"RIFF"  # a chunk per sentence, then the end
    seconds = (sum(map(len, chunks)) - 44) / 2 / tts.sample_rate("en_US-copy-medium")
    assert 1.0 < seconds < 6.0
    tts.close()
