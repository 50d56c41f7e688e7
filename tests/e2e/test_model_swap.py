"""text-generation-webui's model endpoints on a real server (issue 22): /v1/internal/model/list
offers the packaged model and --model_dir's, a load swaps the served model while a stream
started on the old one finishes intact, a bad load keeps the old model, an unload leaves a
clear 503, and only the admin key may list, load and unload.

The second model is the packaged GGUF again, as a file of another name in --model_dir,
loaded with another context window (the only instruct model at hand): on llama.cpp a new
llama-server child serves it; on transformers new weights are loaded in the engine.
"""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from src.engine.llamacpp_backend import server_path
from src.engine.model_source import PACKAGED_MODELS, packaged_file
from src.settings_model import DEFAULT_BASE_MODEL
from tests.server import RemoteServer

USER, ADMIN = "user-key", "admin-key"
COPY = "smollm2-copy.gguf"
BACKENDS = [pytest.param("llamacpp", marks=pytest.mark.skipif(server_path() is None, reason="llama-server is not built")),
            "transformers"]


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"swap-{request.param}")
    models = root / "models"
    models.mkdir()
    gguf = packaged_file(*PACKAGED_MODELS[DEFAULT_BASE_MODEL])
    assert gguf is not None
    (models / COPY).symlink_to(gguf)
    (models / "broken.gguf").write_bytes(b"GGUF this is not a model")
    flags = [f"--llm_backend={request.param}", f"--model_dir={models}", "--enforce_h2ogpt_api_key=True",
             f"--h2ogpt_api_keys={json.dumps([USER])}", f"--admin_api_key={ADMIN}",
             "--enable_stt=False", "--enable_tts=False", "--pre_load_embedding_model=False"]
    with RemoteServer(root, *flags) as running:
        running.backend = request.param
        yield running


def api(server: RemoteServer, method: str, path: str, key: str = ADMIN, **kwargs) -> httpx.Response:
    return httpx.request(method, server.base_url + path, headers=headers(key), timeout=300, **kwargs)


def chat(server: RemoteServer, **body) -> httpx.Response:
    return api(server, "POST", "/chat/completions", USER,
               json={"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8, **body})


def test_list_offers_the_packaged_model_and_the_model_dirs(server):
    names = api(server, "GET", "/internal/model/list").json()["model_names"]
    assert names[0] == DEFAULT_BASE_MODEL
    assert COPY in names and "broken.gguf" in names
    info = api(server, "GET", "/internal/model/info", USER).json()
    assert info == {"model_name": DEFAULT_BASE_MODEL, "lora_names": [],
                    "loader": "llama.cpp" if server.backend == "llamacpp" else "Transformers"}


def test_only_the_admin_key_lists_loads_and_unloads(server):
    for method, path in (("GET", "/internal/model/list"), ("POST", "/internal/model/load"),
                         ("POST", "/internal/model/unload")):
        body = {"json": {"model_name": COPY}} if path.endswith("load") else {}
        missing = httpx.request(method, server.base_url + path, timeout=30, **body)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
        user = api(server, method, path, USER, **body)
        assert user.status_code == 403, user.text
        assert user.json()["error"]["code"] == "admin_key_required" and "--admin_api_key" in user.json()["error"]["message"]
    assert api(server, "GET", "/internal/model/info", USER).json()["model_name"] == DEFAULT_BASE_MODEL


def test_a_bad_load_is_a_4xx_and_the_old_model_still_answers(server):
    unknown = api(server, "POST", "/internal/model/load", json={"model_name": "no-such-model.gguf"})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "model_name"
    broken = api(server, "POST", "/internal/model/load", json={"model_name": "broken.gguf"})
    assert broken.status_code == 400, broken.text
    error = broken.json()["error"]
    assert error["code"] == "model_load_failed" and "broken.gguf" in error["message"]
    assert DEFAULT_BASE_MODEL in error["message"]  # ... is still served
    unknown_arg = api(server, "POST", "/internal/model/load", json={"model_name": COPY, "args": {"rope_freq": 2}})
    assert unknown_arg.status_code == 400 and "rope_freq" in unknown_arg.json()["error"]["message"]
    bad_cache = api(server, "POST", "/internal/model/load", json={"model_name": COPY, "args": {"cache_type": "q3_k"}})
    assert bad_cache.status_code == 400 and "'q3_k'" in bad_cache.json()["error"]["message"]
    if server.backend == "transformers":  # llama.cpp's args are refused, not dropped
        llama_args = api(server, "POST", "/internal/model/load",
                         json={"model_name": COPY, "args": {"flash_attn": True, "cache_type": "q8_0"}})
        assert llama_args.status_code == 400, llama_args.text
        message = llama_args.json()["error"]["message"]
        assert "flash_attn" in message and "cache_type" in message and "llama.cpp" in message
    answer = chat(server)
    assert answer.status_code == 200 and answer.json()["model"] == DEFAULT_BASE_MODEL
    assert answer.json()["choices"][0]["message"]["content"]


@pytest.mark.timeout(900)  # a long answer on a busy machine
def test_a_load_swaps_the_model_while_a_stream_on_the_old_one_finishes(server):
    tokens = 600 if server.backend == "llamacpp" else 300  # long enough to outlast the load
    body = {"model": DEFAULT_BASE_MODEL, "messages": [{"role": "user", "content": "Write a long story."}],
            "max_tokens": tokens, "min_tokens": tokens, "temperature": 1.0, "stream": True,
            "stream_options": {"include_usage": True}}
    started, loaded = threading.Event(), {}

    def load() -> None:
        started.wait(120)
        loaded["response"] = api(server, "POST", "/internal/model/load",
                                 json={"model_name": COPY, "args": {"ctx_size": 1024}})

    loader = threading.Thread(target=load)
    loader.start()
    text, finish, usage, ids, load_done_before_end = "", None, None, set(), False
    with httpx.stream("POST", server.base_url + "/chat/completions", json=body, headers=headers(USER),
                      timeout=600) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            ids.add(chunk["model"])
            usage = chunk.get("usage") or usage
            for choice in chunk["choices"]:
                text += choice["delta"].get("content") or ""
                finish = choice.get("finish_reason") or finish
            if text and not started.is_set():
                started.set()
            if finish is None:
                load_done_before_end = "response" in loaded
    loader.join(300)
    assert loaded["response"].status_code == 200 and loaded["response"].json() == "OK", loaded["response"].text
    assert load_done_before_end, "the stream ended before the new model served: it did not outlast the load"
    # the stream on the old model finished intact: every token it was asked for, the reason, its model
    assert finish == "length" and usage["completion_tokens"] == tokens and len(text) > tokens
    assert ids == {DEFAULT_BASE_MODEL}
    models = api(server, "GET", "/models", USER).json()["data"]
    assert [(m["id"], m["max_model_len"]) for m in models] == [(COPY, 1024)]
    info = api(server, "GET", "/internal/model/info", USER).json()
    assert info["model_name"] == COPY
    answer = chat(server)
    assert answer.status_code == 200 and answer.json()["model"] == COPY
    gone = chat(server, model=DEFAULT_BASE_MODEL)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"


def test_unload_leaves_a_clear_503_until_a_load(server):
    assert api(server, "POST", "/internal/model/unload").json() == "OK"
    assert api(server, "GET", "/internal/model/info", USER).json() == {"model_name": "None", "lora_names": [],
                                                                       "loader": None}
    assert api(server, "GET", "/models", USER).json()["data"] == []
    refused = chat(server)
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "model_not_loaded" and "/v1/internal/model/load" in error["message"]
    assert api(server, "POST", "/internal/model/load", json={"model_name": DEFAULT_BASE_MODEL}).status_code == 200
    answer = chat(server)
    assert answer.status_code == 200 and answer.json()["model"] == DEFAULT_BASE_MODEL


def test_no_llama_server_is_left_behind_by_the_swaps(server):
    """Each swap on llama.cpp drained and stopped the child it replaced: one is left."""
    if server.backend != "llamacpp":
        pytest.skip("llama.cpp only")
    import time

    import psutil

    assert server.proc is not None
    engine = psutil.Process(server.proc.pid)

    def children() -> list[psutil.Process]:
        return [p for p in engine.children(recursive=True)
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE and p.name().startswith("llama-server")]

    deadline = time.monotonic() + 30  # the drains run in the background: wait for them, assert no time
    while len(children()) > 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(children()) == 1
