"""Responses input parts given by a /v1/files ``file_id``, with the openai SDK: the app runs
on a recording OpenAI-compatible server (tests/recording_server.py) as its engine, so the
test sees what the model receives: an uploaded image as an image part with its bytes, an
uploaded text or PDF file as its text in the turn. Another API key's file is a 404."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import openai
import pytest

from tests.docqa.fixtures import minimal_pdf
from tests.recording_server import MODEL, RecordingServer, Reply
from tests.server import RemoteServer

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def remote() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture(scope="module")
def front(remote: RecordingServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    workdir = tmp_path_factory.mktemp("responses_files")
    keys = workdir / "keys.json"
    keys.write_text(json.dumps(["key-alice", "key-bob"]))
    with RemoteServer(workdir, f"--inference_server=openai_chat:{remote.base_url}", f"--db_root={workdir / 'db'}",
                      "--enforce_h2ogpt_api_key=True", f"--h2ogpt_api_keys={keys}") as server:
        yield server


def user_content(remote: RecordingServer) -> object:
    with remote.lock:
        return remote.bodies[-1]["messages"][-1]["content"]


def test_an_uploaded_image_reaches_the_model_as_an_image_part(front, remote):
    alice = front.client(api_key="key-alice")
    image = alice.files.create(file=("dot.png", PNG), purpose="vision")
    remote.script.append(Reply(text="A dot."))
    response = alice.responses.create(model=MODEL, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"}, {"type": "input_image", "file_id": image.id}]}])
    assert response.output_text.strip() == "A dot."
    content = user_content(remote)
    assert content[0] == {"type": "text", "text": "What is this?"}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()


@pytest.mark.parametrize("name, data, text", [
    ("notes.txt", b"The tide turns at 6.", "The tide turns at 6."),
    ("report.pdf", minimal_pdf("Harbour depth is 12 metres."), "Harbour depth is 12 metres."),
])
def test_an_uploaded_text_or_pdf_file_is_read_into_the_turn(front, remote, name, data, text):
    alice = front.client(api_key="key-alice")
    stored = alice.files.create(file=(name, data), purpose="user_data")
    remote.script.append(Reply(text="Noted."))
    alice.responses.create(model=MODEL, input=[{"role": "user", "content": [
        {"type": "input_file", "file_id": stored.id}, {"type": "input_text", "text": "Summarise."}]}])
    content = user_content(remote)
    assert isinstance(content, str) and content.startswith(f"{name}:\n") and text in content
    assert content.endswith("Summarise.")


def test_another_keys_file_is_a_404_and_a_binary_file_a_400(front):
    alice, bob = front.client(api_key="key-alice"), front.client(api_key="key-bob")
    secret = alice.files.create(file=("secret.txt", b"alice only"), purpose="user_data")
    for part in ({"type": "input_file", "file_id": secret.id}, {"type": "input_image", "file_id": secret.id}):
        with pytest.raises(openai.NotFoundError) as missing:
            bob.responses.create(model=MODEL, input=[{"role": "user", "content": [part]}])
        assert missing.value.body["code"] == "file_not_found"
    with pytest.raises(openai.BadRequestError, match="not a PNG"):
        alice.responses.create(model=MODEL, input=[{"role": "user", "content": [
            {"type": "input_image", "file_id": secret.id}]}])
    binary = alice.files.create(file=("blob.bin", b"\x00\xff\xfe\x01" * 8), purpose="user_data")
    with pytest.raises(openai.BadRequestError, match="neither UTF-8 text nor a PDF"):
        alice.responses.create(model=MODEL, input=[{"role": "user", "content": [
            {"type": "input_file", "file_id": binary.id}]}])
