"""The gradio_client API against a real app with --enforce_h2ogpt_ui_key (keys from a JSON file)."""

from __future__ import annotations

import ast
import json
import re
import time
from collections.abc import Iterator

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from gradio_ui.client import GradioClient
from tests.e2e.gradio_server import GradioApp

KEY = "sk-gradio-test-key"
NAMED_ENDPOINTS = {
    "/submit_nochat_api", "/submit_nochat_plain_api", "/model_names", "/system_hash", "/count_tokens",
    "/upload_api", "/add_file_api", "/add_text", "/get_sources_api", "/delete_sources", "/get_document_api",
}
ZEPHYR = "The Zephyr rocket report. The launch code of the Zephyr rocket is PURPLE-42.\n"


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("keys") / "h2ogpt_api_keys.json"
    path.write_text(json.dumps([KEY]))
    return path


@pytest.fixture(scope="module", params=["transformers", "llamacpp"])
def app(request, tmp_path_factory: pytest.TempPathFactory, keys_file) -> Iterator[GradioApp]:
    """The gradio_client API on both local backends."""
    workdir = tmp_path_factory.mktemp("gradio_api")
    server = GradioApp(
        workdir, "--enforce_h2ogpt_ui_key=True", f"--h2ogpt_api_keys={keys_file}",
        "--max_new_tokens=24", "--temperature=0", f"--llm_backend={request.param}",
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(app: GradioApp) -> Client:
    return Client(app.url, verbose=False, download_files=False)


def params(**values: object) -> str:
    return str({"h2ogpt_key": KEY, **values})


def test_every_named_endpoint_is_published(client: Client):
    info = client.view_api(print_info=False, return_format="dict")
    assert NAMED_ENDPOINTS <= set(info["named_endpoints"])


def test_submit_streams_partials_then_a_final_result(client: Client):
    job = client.submit(params(instruction_nochat="Count from one to ten."), api_name="/submit_nochat_api")
    outputs = [ast.literal_eval(text) for text in job]
    final = ast.literal_eval(job.result())
    assert len(outputs) > 2, "expected several streamed results"
    responses = [o["response"] for o in outputs]
    assert all(later.startswith(earlier) for earlier, later in zip(responses, responses[1:], strict=False))
    assert final["response"] and final["response"] == responses[-1]
    assert final["sources"] == [] and final["finish_reason"] in ("stop", "length")
    assert final["completion_tokens"] > 0 and final["prompt_tokens"] > 0


def test_submit_accepts_json_as_well_as_str_dict(client: Client):
    payload = json.dumps({"h2ogpt_key": KEY, "instruction": "Say hi.", "max_new_tokens": 4})
    result = ast.literal_eval(client.predict(payload, api_name="/submit_nochat_api"))
    assert result["response"] and result["completion_tokens"] <= 4


def test_plain_endpoint_returns_one_final_result(client: Client):
    job = client.submit(params(instruction_nochat="Name a fruit.", max_new_tokens=6),
                        api_name="/submit_nochat_plain_api")
    result = ast.literal_eval(job.result())
    assert len(job.outputs()) == 1
    assert result["response"] and result["finish_reason"] in ("stop", "length")


def test_guided_fields_constrain_the_answer(client: Client):
    choice = ast.literal_eval(client.predict(params(instruction="Is fire hot?", guided_choice=["yes", "no"],
                                                    max_new_tokens=4), api_name="/submit_nochat_plain_api"))
    assert choice["response"] in ("yes", "no")
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}},
              "required": ["n"], "additionalProperties": False}
    result = ast.literal_eval(client.predict(params(instruction="Pick a digit.", guided_json=schema,
                                                    response_format="json_object", max_new_tokens=16),
                                             api_name="/submit_nochat_plain_api"))
    assert result["finish_reason"] == "stop" and 0 <= json.loads(result["response"])["n"] <= 9


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (str({"instruction": "hi"}), "API key is required"),
        (str({"instruction": "hi", "h2ogpt_key": "wrong"}), "invalid API key"),
        (params(instruction="hi", temperature=5), "temperature"),
        (params(instruction="hi", not_a_param=1), "not_a_param: unknown parameter"),
        (params(instruction="hi", langchain_action="Dance"), "langchain_action"),
        ("[1, 2]", "expected a dict"),
        ("{oops", "neither JSON nor a Python dict"),
    ],
)
def test_bad_input_and_bad_keys_are_errors_not_answers(client: Client, payload: str, message: str):
    for endpoint in ("/submit_nochat_api", "/submit_nochat_plain_api"):
        with pytest.raises(AppError, match=message):
            client.predict(payload, api_name=endpoint)


def test_model_names_system_hash_and_count_tokens(client: Client):
    models = ast.literal_eval(client.predict(api_name="/model_names"))
    assert models[0]["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert models[0]["max_seq_len"] > 0
    assert re.fullmatch(r"[0-9a-f]{40}|[\w.+-]+", client.predict(api_name="/system_hash"))
    assert client.predict("hello world", KEY, api_name="/count_tokens") == 2
    with pytest.raises(AppError, match="invalid API key"):
        client.predict("hello world", "wrong", api_name="/count_tokens")


def test_keys_file_is_reread_when_it_changes(app: GradioApp, client: Client, keys_file):
    new_key = f"sk-added-later-{app.port}"  # one per backend: the keys file is the module's
    with pytest.raises(AppError):
        client.predict("x", new_key, api_name="/count_tokens")
    keys_file.write_text(json.dumps([*json.loads(keys_file.read_text()), new_key]))
    deadline = time.monotonic() + 30
    while True:
        try:
            assert client.predict("x", new_key, api_name="/count_tokens") >= 1
            break
        except AppError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# --- GradioClient (gradio_ui/client.py) --------------------------------------------------
@pytest.fixture(scope="module")
def h2ogpt(app: GradioApp) -> GradioClient:
    return GradioClient(app.url, h2ogpt_key=KEY)


def test_gradio_client_question_and_stream(h2ogpt: GradioClient):
    answer = h2ogpt.question("What is the capital of France?", max_new_tokens=24)
    assert "Paris" in answer
    pieces = list(h2ogpt.question_stream("Count from one to ten.", max_new_tokens=16))
    assert len(pieces) > 1 and "".join(pieces) == h2ogpt.last_result["response"]


def test_gradio_client_query_with_text_and_models(h2ogpt: GradioClient):
    answer = h2ogpt.query("What color is the cat called Tom?",
                          text=["Tom is a blue cat who lives in Oslo."], max_new_tokens=12)
    assert "blue" in answer.lower()
    assert h2ogpt.list_models() == ["HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert h2ogpt.count_tokens("hello world") == 2


def test_gradio_client_persist_keeps_the_conversation(app: GradioApp):
    client = GradioClient(app.url, h2ogpt_key=KEY, persist=True)
    client.question("My name is Zorblax. Just say OK.", max_new_tokens=6)
    assert len(client.chat_conversation) == 1
    answer = client.question("What is my name?", max_new_tokens=12)
    assert "Zorblax" in answer
    assert len(client.chat_conversation) == 2


def test_gradio_client_with_a_bad_key_raises(app: GradioApp):
    with pytest.raises(AppError, match="invalid API key"):
        GradioClient(app.url, h2ogpt_key="wrong").question("hi")
    with pytest.raises(AppError, match="API key is required"):
        list(GradioClient(app.url).question_stream("hi"))


# --- documents ---------------------------------------------------------------------------
def test_document_endpoints_round_trip(client: Client, tmp_path):
    doc = tmp_path / "zephyr.txt"
    doc.write_text(ZEPHYR)
    name, server_path = client.predict(handle_file(str(doc)), api_name="/upload_api")
    assert name == "zephyr.txt" and server_path.endswith("zephyr.txt")
    added = client.predict(file=server_path, langchain_mode="MyData", h2ogpt_key=KEY, api_name="/add_file_api")
    assert added["files"][0]["status"] == "added" and added["sources"] == ["zephyr.txt"]
    text = client.predict(text="Bananas are yellow.", langchain_mode="MyData", source="fruit",
                          h2ogpt_key=KEY, api_name="/add_text")
    assert text["sources"] == ["fruit"]
    assert client.predict(langchain_mode="MyData", h2ogpt_key=KEY, api_name="/get_sources_api") == [
        "fruit", "zephyr.txt"]
    document = client.predict(source="zephyr.txt", langchain_mode="MyData", h2ogpt_key=KEY,
                              api_name="/get_document_api")
    assert "PURPLE-42" in document["chunks"][0]["content"]

    job = client.submit(params(instruction="What is the launch code of the Zephyr rocket?",
                               langchain_mode="MyData", top_k_docs=1), api_name="/submit_nochat_api")
    final = ast.literal_eval(job.result())
    assert final["sources"] and final["sources"][0]["source"] == "zephyr.txt"
    assert final["sources"][0]["score"] > 0 and "PURPLE-42" in final["sources"][0]["content"]

    assert client.predict(sources=["fruit"], langchain_mode="MyData", h2ogpt_key=KEY,
                          api_name="/delete_sources") == ["fruit"]
    assert client.predict(langchain_mode="MyData", h2ogpt_key=KEY, api_name="/get_sources_api") == [
        "zephyr.txt"]


def test_my_data_is_private_to_each_client(app: GradioApp, client: Client):
    client.predict(text="Private note.", langchain_mode="MyData", source="mine", h2ogpt_key=KEY,
                   api_name="/add_text")
    other = Client(app.url, verbose=False, download_files=False)
    assert "mine" not in other.predict(langchain_mode="MyData", h2ogpt_key=KEY, api_name="/get_sources_api")


def test_document_endpoints_refuse_bad_keys_and_foreign_paths(client: Client):
    with pytest.raises(AppError, match="API key"):
        client.predict(langchain_mode="MyData", api_name="/get_sources_api")
    with pytest.raises(AppError, match="invalid API key"):
        client.predict(text="x", h2ogpt_key="wrong", api_name="/add_text")
    with pytest.raises(AppError, match="/upload_api"):
        client.predict(file="/etc/passwd", langchain_mode="MyData", h2ogpt_key=KEY, api_name="/add_file_api")
    with pytest.raises(AppError, match="unknown collection"):
        client.predict(langchain_mode="NoSuchCollection", h2ogpt_key=KEY, api_name="/get_sources_api")


def test_gradio_client_query_over_a_file(h2ogpt: GradioClient, tmp_path):
    doc = tmp_path / "zephyr_notes.txt"
    doc.write_text(ZEPHYR)
    h2ogpt.query("What is the launch code of the Zephyr rocket?", file=doc, max_new_tokens=12)
    sources = h2ogpt.last_result["sources"]
    assert [s["source"] for s in sources] == ["zephyr_notes.txt"]
    assert "zephyr_notes.txt" in h2ogpt.get_sources()
    summary = h2ogpt.summarize(langchain_mode="MyData", document_choice=["zephyr_notes.txt"],
                               max_new_tokens=24)
    assert summary.strip()
