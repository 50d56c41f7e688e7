"""Speech and images through the OpenAI API end to end: generate.py, the real Whisper tiny.en
and piper voice, a tiny diffusers pipeline built in a temp dir, and the official openai SDK."""

from __future__ import annotations

import base64
import io
import re
import threading
import time

import av
import httpx
import openai
import pytest
from PIL import Image

from src.docqa.loaders import AUDIO_GROUP_SECONDS
from tests.media import make_tiny_image_model
from tests.server import RemoteServer

MAX_AUDIO = 3_000_000
SENTENCES = [
    "The weather is nice today.",
    "Please open the window in the kitchen.",
    "My brother plays the guitar every evening.",
    "We need to buy milk and bread.",
    "The train leaves at seven in the morning.",
    "She is reading a book about history.",
    "Turn left at the next street.",
    "The children are playing in the garden.",
    "I would like a cup of coffee.",
    "This computer is very fast.",
]
FIVE = ("The first sentence opens the text. The second one follows it closely. Then comes a third "
        "sentence. A fourth sentence is spoken next. And the fifth sentence ends it all.")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model_dir = make_tiny_image_model(tmp_path_factory.mktemp("images") / "tiny-sd")
    with RemoteServer(tmp_path_factory.mktemp("media"), f"--visible_image_models=['{model_dir}']",
                      f"--max_audio_bytes={MAX_AUDIO}") as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return server.client(timeout=120)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """Word-level edit distance over the reference length."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ref != hyp))
    return row[-1] / max(1, len(reference))


def decoded_seconds(data: bytes) -> float:
    """Seconds of sound in an audio file, as FFmpeg's decoders read it."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / float(stream.rate)


def speak(client, text: str, **kwargs) -> bytes:
    return client.audio.speech.create(model="tts-1", voice="alloy", input=text, **kwargs).read()


# --- speech ----------------------------------------------------------------------------------
def test_speech_to_text_round_trip_word_error_rate_under_10_percent(client):
    reference, hypothesis = [], []
    for sentence in SENTENCES:
        audio = speak(client, sentence, response_format="wav")
        text = client.audio.transcriptions.create(model="whisper-1", file=("s.wav", audio)).text
        reference += words(sentence)
        hypothesis += words(text)
    assert word_error_rate(reference, hypothesis) <= 0.10, (reference, hypothesis)


def test_default_speech_is_mp3_that_decodes(client):
    audio = speak(client, "Hello from the offline speech service.")
    assert audio[:3] == b"ID3" or (audio[0] == 0xFF and audio[1] & 0xE0 == 0xE0)  # an MP3 file
    with av.open(io.BytesIO(audio)) as container:
        assert container.format.name == "mp3"
    assert 1.0 < decoded_seconds(audio) < 10.0


@pytest.mark.parametrize("fmt", ["opus", "aac", "flac", "wav"])
def test_every_speech_format_decodes(client, fmt):
    assert 0.5 < decoded_seconds(speak(client, "One two three.", response_format=fmt)) < 5.0


def test_pcm_is_24khz_16bit_mono(client):
    pcm = speak(client, "One two three.", response_format="pcm")
    assert len(pcm) % 2 == 0 and 0.5 < len(pcm) / 2 / 24000 < 5.0


def test_speech_streams_first_bytes_before_half_the_synthesis(server):
    """The first sentence's bytes arrive at <= 0.5x the time of the whole 5-sentence answer."""
    body = {"model": "tts-1", "input": FIVE, "voice": "alloy", "response_format": "mp3"}
    speak_once = httpx.post(server.base_url + "/audio/speech", json=body, timeout=60)  # warm
    assert speak_once.status_code == 200
    ratios = []
    for _ in range(3):
        start = time.perf_counter()
        first = None
        with httpx.stream("POST", server.base_url + "/audio/speech", json=body, timeout=60) as response:
            assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
            for chunk in response.iter_raw():
                if chunk and first is None:
                    first = time.perf_counter() - start
        total = time.perf_counter() - start
        assert first is not None
        ratios.append(first / total)
    assert min(ratios) <= 0.5, ratios


def test_speed_changes_the_length(client):
    slow = decoded_seconds(speak(client, FIVE, response_format="wav", speed=0.5))
    fast = decoded_seconds(speak(client, FIVE, response_format="wav", speed=2.0))
    assert slow > 2.5 * fast


def test_transcription_formats(client):
    audio = speak(client, "The cat sat on the mat. The dog slept by the door.", response_format="flac")
    text = client.audio.transcriptions.create(model="whisper-1", file=("a.flac", audio),
                                              response_format="text")
    assert "cat sat on the mat" in text.lower()
    srt = client.audio.transcriptions.create(model="whisper-1", file=("a.flac", audio), response_format="srt")
    assert re.search(r"^1\n00:00:00,000 --> 00:00:\d\d,\d{3}\n", srt)
    vtt = client.audio.transcriptions.create(model="whisper-1", file=("a.flac", audio), response_format="vtt")
    assert vtt.startswith("WEBVTT") and re.search(r"00:00:\d\d\.\d{3} --> ", vtt)
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=("a.flac", audio), response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.language == "en" and verbose.duration > 2.0 and verbose.segments
    assert [w.word.strip(".,").lower() for w in verbose.words][:3] == ["the", "cat", "sat"]
    assert all(w.start <= w.end <= verbose.duration + 0.5 for w in verbose.words)
    assert verbose.segments[0].start < verbose.segments[-1].end


def test_translation_gives_english_text(client):
    audio = speak(client, "Good morning, how are you?", response_format="opus")
    result = client.audio.translations.create(model="whisper-1", file=("a.ogg", audio))
    assert "good morning" in result.text.lower()


def test_bad_audio_inputs_get_4xx_envelopes_and_the_server_stays_healthy(server, client):
    cases = [
        (("empty.wav", b""), 400, "audio_invalid"),
        (("noise.mp3", b"\x00\x01garbage" * 500), 400, "audio_invalid"),
        (("notes.txt", b"just text"), 400, "unsupported_format"),
        (("big.wav", b"\x00" * (MAX_AUDIO + 1)), 413, "upload_too_large"),
    ]
    for file, status, code in cases:
        with pytest.raises(openai.APIStatusError) as info:
            client.audio.transcriptions.create(model="whisper-1", file=file)
        assert info.value.status_code == status, file[0]
        error = info.value.body
        assert error["code"] == code and error["message"], file[0]
    with pytest.raises(openai.BadRequestError) as info:
        speak(client, "")
    assert info.value.body["param"] == "input" and "empty" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="tts-1", voice="no-such-voice", input="Hi.")
    assert info.value.body["code"] == "voice_not_found" and "no-such-voice" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", response_format="mp4")
    assert server.health()["status"] == "ok"
    assert "hello" in client.audio.transcriptions.create(
        model="whisper-1", file=("ok.wav", speak(client, "Hello.", response_format="wav"))).text.lower()


def test_voices_are_listed(server):
    voices = httpx.get(server.base_url + "/audio/voices").json()  # the shape Open WebUI reads
    assert voices == {"voices": [{"id": "joe", "name": "joe"}]}


def test_audio_models_are_listed_and_each_is_accepted_by_its_endpoint(server, client):
    listing = httpx.get(server.base_url + "/audio/models").json()
    assert listing["models"] == listing["data"]  # Open WebUI reads "models"
    by_task = {m["task"]: m["id"] for m in listing["models"]}
    assert set(by_task) == {"speech-to-text", "text-to-speech"}
    audio = client.audio.speech.create(model=by_task["text-to-speech"], voice="joe", input="Hello.",
                                       response_format="wav").read()
    text = client.audio.transcriptions.create(model=by_task["speech-to-text"], file=("hi.wav", audio)).text
    assert "hello" in text.lower()


# --- images ------------------------------------------------------------------------------------
def test_image_generation_with_the_tiny_pipeline(client):
    result = client.images.generate(prompt="a red square", n=2, size="64x48",
                                    extra_body={"seed": 7, "num_inference_steps": 2})
    assert len(result.data) == 2
    images = [Image.open(io.BytesIO(base64.b64decode(d.b64_json))) for d in result.data]
    assert all(im.format == "PNG" and im.size == (64, 48) for im in images)
    again = client.images.generate(prompt="a red square", n=2, size="64x48",
                                   extra_body={"seed": 7, "num_inference_steps": 2})
    assert [d.b64_json for d in again.data] == [d.b64_json for d in result.data]  # seeded


def test_image_url_format_and_model_choice(client):
    result = client.images.generate(prompt="a tree", model="tiny-sd", response_format="url",
                                    extra_body={"num_inference_steps": 1})
    url = result.data[0].url
    assert url.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).format == "PNG"
    with pytest.raises(openai.NotFoundError) as info:
        client.images.generate(prompt="a tree", model="no-such-model")
    assert info.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(prompt="a tree", size="100x3")
    assert info.value.body["param"] == "size"


# --- audio in document collections ---------------------------------------------------------------
TALK = [
    "Welcome to the harbour museum tour.", "The old lighthouse was built from granite blocks.",
    "Fishermen used it for more than a century.", "The keeper lived in a small cottage by the tower.",
    "Storms often broke the windows of the lamp room.", "Every spring the tower was painted white again.",
    "Now we walk to the second room of the museum.", "Here you can see the ship models of the harbour.",
    "The vault in this room is locked with a code.", "The code of the museum vault is purple falcon.",
    "Only the curator knows how to open it.", "That ends our tour, thank you for listening.",
]


def test_audio_file_in_a_collection_is_transcribed_and_sources_give_the_time_span(server, client):
    audio = speak(client, " ".join(TALK), response_format="flac", speed=0.8)
    length = decoded_seconds(audio)
    assert length > 1.5 * AUDIO_GROUP_SECONDS  # long enough for two spans
    added = httpx.post(server.base_url + "/collections/MyData/files", files={"file": ("tour.flac", audio)},
                       headers={"Authorization": "Bearer EMPTY"}, timeout=300).json()  # the SDK's identity
    assert added["files"][0]["status"] == "added" and added["files"][0]["chunks"] >= 2, added
    response = client.chat.completions.create(
        model=server.model(), messages=[{"role": "user", "content": "What is the code of the museum vault?"}],
        max_tokens=16, temperature=0,
        extra_body={"langchain_mode": "MyData", "langchain_action": "Query", "top_k_docs": 1},
    )
    source = (response.choices[0].model_extra or {})["sources"][0]
    assert source["source"] == "tour.flac" and "purple falcon" in source["content"].lower()
    # the vault is in the second half: not the first span, and a span of about 20 s
    assert 5.0 < source["start"] < source["end"] <= length + 0.5, (source, length)
    assert source["end"] - source["start"] < AUDIO_GROUP_SECONDS + 10


# --- isolation ------------------------------------------------------------------------------------
def test_chat_tokens_keep_flowing_while_a_transcription_runs(server, client):
    """Speech runs on its own worker thread: a chat answer streamed during a transcription never
    waits for it (the longest gap between tokens is well under one transcription's time)."""
    audio = speak(client, " ".join(TALK), response_format="wav")
    transcribe = lambda: client.audio.transcriptions.create(model="whisper-1", file=("t.wav", audio))  # noqa: E731
    start = time.perf_counter()
    transcribe()
    alone = time.perf_counter() - start
    done = threading.Event()
    spans: list[tuple[float, float]] = []

    def background() -> None:
        while not done.is_set():
            began = time.perf_counter()
            transcribe()
            spans.append((began, time.perf_counter()))

    thread = threading.Thread(target=background, daemon=True)
    thread.start()
    time.sleep(0.3)
    stamps = []
    stream = client.chat.completions.create(
        model=server.model(), messages=[{"role": "user", "content": "Tell me a story about a boat."}],
        max_tokens=48, temperature=0, stream=True, extra_body={"min_new_tokens": 48},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.perf_counter())
    done.set()
    thread.join()
    assert len(stamps) > 20
    overlapped = [t for t in stamps if any(a <= t <= b for a, b in spans)]
    assert len(overlapped) > 10, "the answer should stream while transcriptions run"
    gap = max(b - a for a, b in zip(stamps, stamps[1:], strict=False))
    assert gap < 0.5 * alone, (gap, alone)


def test_speech_turned_off_answers_501_with_a_code_naming_the_flag(tmp_path):
    with RemoteServer(tmp_path, "--enable_stt=False", "--enable_tts=False") as off:
        client = off.client()
        with pytest.raises(openai.InternalServerError) as info:
            client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"RIFF...."))
        assert info.value.status_code == 501
        assert info.value.body["code"] == "feature_off_enable_stt" and "--enable_stt" in info.value.body["message"]
        with pytest.raises(openai.InternalServerError) as info:
            client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.")
        assert info.value.status_code == 501
        assert info.value.body["code"] == "feature_off_enable_tts" and "--enable_tts" in info.value.body["message"]
        assert httpx.get(off.base_url + "/audio/voices").json() == {"voices": []}
        assert httpx.get(off.base_url + "/audio/models").json()["models"] == []
        assert off.health()["status"] == "ok"
