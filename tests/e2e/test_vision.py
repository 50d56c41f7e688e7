"""Vision input end to end: generate.py serving the default chat model plus a tiny LLaVA built
from configs (--visible_vision_models), reached through the openai SDK, gradio_client and the
UI in headless Chromium."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from gradio_client.exceptions import AppError

from gradio_ui.client import GradioClient
from tests.conftest import ROOT
from tests.e2e.browser import browser_context, open_page
from tests.server import RemoteServer
from tests.vision import IMAGE_TOKENS, make_tiny_vision_model, png_bytes, png_data_uri

VLM = "tiny-llava"
SCREENSHOT = ROOT / "docs" / "images" / "ui-vision.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    model_dir = make_tiny_vision_model(tmp_path_factory.mktemp("vision") / VLM)
    with RemoteServer(tmp_path_factory.mktemp("vision_app"), f"--visible_vision_models=['{model_dir}']",
                      "--max_new_tokens=6", "--temperature=0", gradio=True) as srv:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the UI comes up beside the API
            try:
                with urllib.request.urlopen(srv.gradio_url + "config", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        yield srv


@pytest.fixture(scope="module")
def client(server: RemoteServer) -> Any:
    return server.client(timeout=120)


def image_message(text: str, url: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


# --- the openai SDK ---------------------------------------------------------------------------
def test_models_list_the_vision_model_after_the_default(client):
    ids = [m.id for m in client.models.list().data]
    assert len(ids) == 2 and ids[1] == VLM


def test_a_data_uri_image_reaches_the_vision_model(client):
    asked = client.chat.completions.create(model=VLM, messages=image_message("What is it?", png_data_uri()),
                                           max_tokens=4, temperature=0)
    plain = client.chat.completions.create(
        model=VLM, messages=[{"role": "user", "content": [{"type": "text", "text": "What is it?"}]}],
        max_tokens=4, temperature=0)
    assert asked.model == VLM and isinstance(asked.choices[0].message.content, str)
    assert asked.usage.prompt_tokens - plain.usage.prompt_tokens == IMAGE_TOKENS
    assert asked.choices[0].finish_reason in ("stop", "length")


def test_an_image_answer_streams(client):
    stream = client.chat.completions.create(model=VLM, messages=image_message("Describe it.", png_data_uri()),
                                            max_tokens=5, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    whole = client.chat.completions.create(model=VLM, messages=image_message("Describe it.", png_data_uri()),
                                           max_tokens=5, temperature=0)
    assert len(pieces) >= 2 and "".join(pieces) == whole.choices[0].message.content
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_a_text_only_model_answers_400_naming_the_flag(client, server):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=server.model(), max_tokens=4,
                                       messages=image_message("What is it?", png_data_uri()))
    error = info.value.body
    assert info.value.status_code == 400 and error["code"] == "unsupported_feature"
    assert "--visible_vision_models" in error["message"]


def test_an_http_image_url_is_refused_offline_naming_the_flag(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=VLM, max_tokens=4,
                                       messages=image_message("What is it?", "http://127.0.0.1:9/cat.png"))
    assert info.value.status_code == 400 and "--allow_image_url_fetch" in info.value.body["message"]


def test_a_broken_image_is_a_400_and_the_server_keeps_answering(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=VLM, max_tokens=4,
                                       messages=image_message("?", "data:image/png;base64,bm90IGFuIGltYWdl"))
    assert info.value.body["param"] == "images"
    ok = client.chat.completions.create(model=VLM, max_tokens=2, messages=image_message("?", png_data_uri()))
    assert ok.choices[0].finish_reason in ("stop", "length")


# --- gradio_client ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gclient(server: RemoteServer) -> GradioClient:
    return GradioClient(server.gradio_url)


def test_gradio_client_sends_an_image_file_to_the_vision_model(gclient, tmp_path):
    picture = tmp_path / "red.png"
    picture.write_bytes(png_bytes())
    answer = gclient.question("What is it?", images=[picture], visible_models=VLM, max_new_tokens=4)
    with_image = gclient.last_result["prompt_tokens"]
    gclient.question("What is it?", visible_models=VLM, max_new_tokens=4)
    assert isinstance(answer, str) and with_image - gclient.last_result["prompt_tokens"] == IMAGE_TOKENS


def test_gradio_client_text_model_refuses_images_naming_the_flag(gclient, tmp_path):
    picture = tmp_path / "red.png"
    picture.write_bytes(png_bytes())
    with pytest.raises(AppError, match="--visible_vision_models"):
        gclient.question("What is it?", images=[picture])


# --- the UI -------------------------------------------------------------------------------------
def test_an_uploaded_image_is_shown_and_answered_by_the_vision_model(server: RemoteServer, gclient, tmp_path):
    picture = tmp_path / "red.png"
    picture.write_bytes(png_bytes(size=(64, 48)))
    expected = gclient.question("What colour is this?", images=[picture], visible_models=VLM)
    with browser_context(tmp_path / "chromium") as ctx:
        page = open_page(ctx, server.gradio_url)
        page.locator("#prompt textarea").wait_for()
        page.locator("#chat_image input[type=file]").set_input_files(str(picture))
        # attaching an image picks the vision model
        page.wait_for_function(f"document.querySelector('#visible_models input').value === '{VLM}'",
                               timeout=30_000)
        page.locator("#prompt textarea").fill("What colour is this?")
        page.locator("#submit").click()
        page.locator("#chatbot [data-testid='user'] img").first.wait_for(timeout=60_000)
        page.wait_for_function("(() => { const i = document.querySelector(\"#chatbot [data-testid='user'] img\");"
                               " return i && i.complete && i.naturalWidth > 0; })()", timeout=30_000)
        bot = page.locator("#chatbot [data-testid='bot']").last
        bot.wait_for(timeout=60_000)
        page.wait_for_function("(() => { const b = [...document.querySelectorAll(\"#chatbot [data-testid='bot']\")]"
                               ".pop(); return b && b.innerText.trim().length > 0; })()", timeout=60_000)
        assert "What colour is this?" in page.locator("#chatbot [data-testid='user']").last.inner_text()
        # the same greedy answer as the vision model gives to the same picture and question,
        # named with its model (two models are served)
        named = [*expected.split(), VLM]
        deadline = time.monotonic() + 30
        while bot.inner_text().split() != named and time.monotonic() < deadline:
            time.sleep(0.2)  # the answer may still be streaming
        assert bot.inner_text().split() == named
        assert bot.locator(".h2ogpt-model").inner_text() == VLM
        assert page.locator("#chatbot .error, .toast-body.error").count() == 0
        assert page.outside == []
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
