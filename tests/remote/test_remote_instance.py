"""A front instance generating on another instance of this product (--inference_server), through
the openai SDK: the same answers as the remote's own, documents answered locally with remote
generation, a remote that goes down and comes back, and --model_lock mixing local and remote."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.browser import browser_context, open_page
from tests.remote.conftest import MODEL
from tests.server import RemoteServer

QUESTIONS = ["What is the capital of France?", "Name three colours.", "Write a haiku about tea."]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CITY = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24},
                                         "population": {"type": "integer", "minimum": 0}},
        "required": ["city", "population"], "additionalProperties": False}


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    with RemoteServer(tmp_path_factory.mktemp("remote")) as server:
        yield server


@pytest.fixture(scope="module")
def front(remote: RemoteServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    workdir = tmp_path_factory.mktemp("front")
    docs = workdir / "docs"
    docs.mkdir()
    (docs / "lighthouse.txt").write_text("The Kestrel Point lighthouse was painted teal in 1987 by Mara Quill.\n")
    with RemoteServer(workdir, f"--inference_server=openai_chat:{remote.base_url}", f"--user_path={docs}",
                      f"--db_root={workdir / 'db'}", "--langchain_mode=UserData") as server:
        yield server


def chat(client: openai.OpenAI, question: str, **kwargs):
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}],
                                          temperature=0, max_tokens=kwargs.pop("max_tokens", 32), **kwargs)


def test_the_remote_model_is_listed_with_its_context_window(front: RemoteServer, remote: RemoteServer):
    ours = httpx.get(front.base_url + "/models").json()["data"]
    theirs = httpx.get(remote.base_url + "/models").json()["data"]
    assert [(m["id"], m["max_model_len"]) for m in ours] == [(theirs[0]["id"], theirs[0]["max_model_len"])]
    backends = front.health()["backends"]
    assert backends == [{"model": MODEL, "backend": "remote", "state": "up"}]


@pytest.mark.parametrize("question", QUESTIONS)
def test_greedy_answers_equal_the_remote_own(front: RemoteServer, remote: RemoteServer, question: str):
    ours, theirs = chat(front.client(), question), chat(remote.client(), question)
    assert ours.choices[0].message.content == theirs.choices[0].message.content
    assert ours.choices[0].finish_reason == theirs.choices[0].finish_reason
    assert (ours.usage.prompt_tokens, ours.usage.completion_tokens) == \
        (theirs.usage.prompt_tokens, theirs.usage.completion_tokens)


def test_stream_assembles_into_the_same_answer_with_usage(front: RemoteServer, remote: RemoteServer):
    whole = chat(remote.client(), QUESTIONS[1]).choices[0].message.content
    chunks = list(chat(front.client(), QUESTIONS[1], stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3  # streamed, not one piece
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_json_schema_is_forwarded_and_enforced(front: RemoteServer, remote: RemoteServer):
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}
    ours = chat(front.client(), "Describe Paris as JSON.", response_format=response_format, max_tokens=64)
    theirs = chat(remote.client(), "Describe Paris as JSON.", response_format=response_format, max_tokens=64)
    assert ours.choices[0].message.content == theirs.choices[0].message.content
    if ours.choices[0].finish_reason == "stop":
        parsed = json.loads(ours.choices[0].message.content)
        assert set(parsed) == {"city", "population"} and isinstance(parsed["population"], int)


def test_forced_tool_call_streams_into_a_valid_call(front: RemoteServer):
    choice = {"type": "function", "function": {"name": "get_weather"}}
    whole = chat(front.client(), "What is the weather in Oslo?", tools=[WEATHER], tool_choice=choice, max_tokens=48)
    call = whole.choices[0].message.tool_calls[0]
    assert whole.choices[0].finish_reason == "tool_calls" and whole.choices[0].message.content is None
    assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments)["city"], str)
    chunks = list(chat(front.client(), "What is the weather in Oslo?", tools=[WEATHER], tool_choice="required",
                       parallel_tool_calls=False, max_tokens=48, stream=True))
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id.startswith("call_") and deltas[0].function.name == "get_weather"
    arguments = "".join(d.function.arguments or "" for d in deltas)
    assert json.loads(arguments) == json.loads(call.function.arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls" if chunks[-1].choices else True


def test_documents_are_retrieved_locally_and_answered_remotely(front: RemoteServer):
    response = chat(front.client(), "Who painted the Kestrel Point lighthouse?", max_tokens=24,
                    extra_body={"langchain_mode": "UserData", "langchain_action": "Query", "top_k_docs": 3})
    sources = [s["source"] for s in (response.choices[0].model_extra or {}).get("sources") or []]
    assert any(name.endswith("lighthouse.txt") for name in sources)
    assert response.choices[0].message.content


def test_remote_4xx_is_passed_on_with_its_message(front: RemoteServer):
    """The front forwards guided_regex unchecked; the remote refuses the regex that does not
    parse, and its message comes back as a 400 envelope."""
    response = httpx.post(front.base_url + "/chat/completions", timeout=60, json={
        "model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "guided_regex": "(["})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == "remote_rejected"
    assert "refused the request" in error["message"] and "regex" in error["message"].lower()


def test_tokenize_counts_with_the_remote_tokenizer(front: RemoteServer, remote: RemoteServer):
    body = {"model": MODEL, "prompt": "Hello tokenizer world"}
    ours = httpx.post(front.url + "/tokenize", json=body, timeout=30).json()
    theirs = httpx.post(remote.url + "/tokenize", json=body, timeout=30).json()
    assert ours["tokens"] == theirs["tokens"] and ours["count"] == theirs["count"] > 0


# --- the remote goes down and comes back -------------------------------------------------------
def test_remote_down_is_a_503_naming_it_then_back_without_restart(tmp_path):
    remote = RemoteServer(tmp_path / "remote").start()
    try:
        with RemoteServer(tmp_path / "front", f"--inference_server=openai_chat:{remote.base_url}",
                          "--inference_server_timeout=2") as front:
            client = front.client(timeout=60)
            assert chat(client, "Say hi.", max_tokens=4).choices[0].message.content
            remote.stop()
            started = time.monotonic()
            with pytest.raises(openai.APIStatusError) as refused:
                chat(client, "Say hi.", max_tokens=4)
            assert time.monotonic() - started < 30  # bounded by the connect timeout, not hung
            assert refused.value.status_code == 503
            error = refused.value.response.json()["error"]
            assert error["code"] == "remote_unavailable" and str(remote.port) in error["message"]
            backends = front.health()["backends"]
            assert backends[0]["state"] == "down" and backends[0]["error"]
            remote.start()  # the same port
            assert chat(client, "Say hi.", max_tokens=4).choices[0].message.content
            assert front.health()["backends"][0]["state"] == "up"
    finally:
        remote.stop()


# --- several models: one local, one remote -----------------------------------------------------
def requests_served(server: RemoteServer) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("h2ogpt_requests_total"))


def test_model_lock_serves_local_and_remote_and_the_ui_switches(remote: RemoteServer, tmp_path):
    lock = json.dumps([{"base_model": MODEL}, {"base_model": "far-smollm",
                                               "inference_server": f"openai_chat:{remote.base_url}"}])
    with RemoteServer(tmp_path / "both", f"--model_lock={lock}", "--temperature=0", "--max_new_tokens=8",
                      gradio=True) as both:
        client = both.client()
        listed = [m.id for m in client.models.list().data]
        assert listed == [MODEL, "far-smollm"]
        before = requests_served(remote)
        assert chat(client, "Say hi.", max_tokens=4).choices[0].message.content
        assert requests_served(remote) == before  # the default model is the local one
        far = client.chat.completions.create(model="far-smollm", messages=[{"role": "user", "content": "Say hi."}],
                                             max_tokens=4, temperature=0)
        assert far.choices[0].message.content and far.model == "far-smollm"
        assert requests_served(remote) == before + 1
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nowhere", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        with browser_context(tmp_path / "chromium") as ctx:
            page = open_page(ctx, both.gradio_url)
            page.locator("#prompt textarea").wait_for()
            page.locator("#visible_models input").click()
            page.get_by_role("option", name="far-smollm").click()
            page.wait_for_function("document.querySelector('#visible_models input').value === 'far-smollm'")
            page.locator("#prompt textarea").fill("Say hello.")
            page.locator("#submit").click()
            deadline = time.monotonic() + 60
            while requests_served(remote) < before + 2 and time.monotonic() < deadline:
                time.sleep(0.3)
            assert requests_served(remote) == before + 2  # the UI's question went to the remote model
            page.locator("#chatbot [data-testid='bot']").last.wait_for()
            assert page.outside == []
