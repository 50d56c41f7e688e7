"""Speech and images in the UI (headless Chromium) and through gradio_client, on a real app
with the real Whisper tiny.en and piper voice and a tiny diffusers pipeline from configs."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from gradio_ui.client import GradioClient
from tests.conftest import ROOT
from tests.e2e.browser import browser_context, open_page
from tests.e2e.gradio_server import GradioApp
from tests.media import make_tiny_image_model

BOT = "#chatbot [data-testid='bot']"
SCREENSHOT = ROOT / "docs" / "images" / "ui-speech-and-images.png"
MEDIA_ENDPOINTS = {"/transcribe_audio_api", "/speak_text_api", "/generate_image_api"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GradioApp]:
    model_dir = make_tiny_image_model(tmp_path_factory.mktemp("images") / "tiny-sd")
    server = GradioApp(tmp_path_factory.mktemp("gradio_media"), f"--visible_image_models=['{model_dir}']",
                       "--max_new_tokens=24", "--temperature=0").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(app: GradioApp) -> GradioClient:
    return GradioClient(app.url)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with browser_context(tmp_path_factory.mktemp("chromium")) as ctx:
        yield ctx


@pytest.fixture
def page(context: Any, app: GradioApp) -> Iterator[Any]:
    page = open_page(context, app.url)
    page.locator("#prompt textarea").wait_for()
    yield page
    assert page.outside == [], f"the UI fetched from outside: {page.outside}"
    page.close()


# --- gradio_client ---------------------------------------------------------------------------
def test_media_endpoints_are_published(client: GradioClient):
    info = client.client.view_api(print_info=False, return_format="dict")
    assert MEDIA_ENDPOINTS <= set(info["named_endpoints"])


def test_speak_then_transcribe_round_trip(client: GradioClient, tmp_path):
    audio = client.speak("The library opens early in the morning.", voice="alloy")
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    path = tmp_path / "speech.wav"
    path.write_bytes(audio)
    assert "library opens early" in client.transcribe(path).lower()
    mp3 = client.speak("Hello.", response_format="mp3")
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF


def test_bad_input_raises_app_errors_naming_the_problem(client: GradioClient, tmp_path):
    garbage = tmp_path / "noise.wav"
    garbage.write_bytes(b"not audio at all" * 100)
    with pytest.raises(AppError, match="not audio"):
        client.transcribe(garbage)
    with pytest.raises(AppError, match="input must not be empty"):
        client.speak("")
    with pytest.raises(AppError, match="unknown voice"):
        client.speak("Hi.", voice="nobody")


def test_generate_image_through_gradio_client(client: GradioClient):
    images = client.generate_image("a blue circle", n=2, size="32x40", seed=3, num_inference_steps=2)
    assert len(images) == 2
    assert all(Image.open(io.BytesIO(png)).size == (32, 40) for png in images)


# --- the UI -------------------------------------------------------------------------------------
def test_microphone_recording_is_transcribed_into_the_message_box(app: GradioApp, client: GradioClient,
                                                                  tmp_path):
    """Chromium's fake microphone plays piper's speech; Record, Stop, and the text appears."""
    speech = client.speak("What is the capital of France?")
    path = tmp_path / "question.wav"
    with wave.open(str(path), "wb") as out:  # a WAV with real sizes, as Chromium's reader wants
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int.from_bytes(speech[24:28], "little"))
        out.writeframes(speech[44:] + b"\0" * 44100)
    args = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={path}")
    with browser_context(tmp_path / "chromium", extra_args=args) as ctx:
        ctx.grant_permissions(["microphone"])
        page = open_page(ctx, app.url)
        page.locator("#prompt textarea").wait_for()
        page.locator("#mic button.record").click()
        time.sleep(4.0)
        page.locator("#mic button.stop-button").first.click()
        page.wait_for_function("document.querySelector('#prompt textarea').value.length > 0", timeout=60_000)
        assert "capital of france" in page.locator("#prompt textarea").input_value().lower()
        assert page.outside == []


def test_speak_reads_the_last_answer_aloud(page: Any):
    page.locator("#prompt textarea").fill("Say hello.")
    page.locator("#submit").click()
    page.locator(BOT).last.wait_for()
    time.sleep(3)  # let the short answer finish
    answer = page.locator(BOT).last.inner_text()
    page.locator("#speak").click()
    link = page.locator("#speech a[data-testid='download-link']")
    link.wait_for(timeout=60_000)
    audio = httpx.get(str(link.get_attribute("href")), timeout=30).content
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    seconds = (len(audio) - 44) / 2 / int.from_bytes(audio[24:28], "little")
    assert 0.2 * len(answer.split()) < seconds < 2.0 * len(answer.split()) + 2, (answer, seconds)


def test_generated_image_is_shown_in_the_chat(page: Any):
    page.locator("#prompt textarea").fill("a green triangle")
    page.locator("#draw_image").click()
    image = page.locator("#chatbot img").last
    image.wait_for(timeout=60_000)
    page.wait_for_function("(() => { const i = [...document.querySelectorAll('#chatbot img')].pop();"
                           " return i && i.complete && i.naturalWidth > 0; })()", timeout=30_000)
    assert page.locator("#chatbot [data-testid='user']").last.inner_text().strip() == "a green triangle"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
