"""text-generation-webui's API examples (docs/textgen_api.md) against a real server, on the
llama.cpp and the transformers backends.

The examples are read from the doc's tagged code blocks (``<!-- test: NAME -->``) so that
the doc and this test cannot drift; the only change is the server's address. Each runs as
a user would: the curl examples with ``curl``, the Python ones as scripts fed by stdin.
The lines the doc marks ``# added`` are dropped to run text-generation-webui's own version
too, whose failure the doc describes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading

import httpx
import pytest

from src.engine.llamacpp_backend import server_path
from tests.conftest import ROOT
from tests.server import RemoteServer

DOC = ROOT / "docs" / "textgen_api.md"
DOC_URL = "http://127.0.0.1:5000"
PROMPTS = "Hello!\nName one colour.\n"


def example(name: str, server: RemoteServer, seed_version: bool = False) -> str:
    """The code block the doc tags ``name``, aimed at ``server``."""
    match = re.search(rf"<!-- test: {name} -->\n```\w+\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"no example {name!r} in {DOC}"
    code = match.group(1)
    if seed_version:
        code = "".join(line for line in code.splitlines(True) if not line.rstrip().endswith("# added"))
    assert DOC_URL in code
    return code.replace(DOC_URL, server.url)


def run_script(code: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-u", "-c", code], input=stdin, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module", params=["llamacpp", "transformers"])
def server(request, tmp_path_factory):
    if request.param == "llamacpp" and server_path() is None:
        pytest.skip("llama-server is not installed (scripts/install_llamacpp.sh)")
    # --max_new_tokens bounds the chat examples, which set no max_tokens
    with RemoteServer(tmp_path_factory.mktemp("textgen"), "--openai_workers=2", "--max_new_tokens=48",
                      f"--llm_backend={request.param}") as srv:
        yield srv


def internal(server: RemoteServer, path: str, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.base_url}/internal/{path}", json=body, timeout=120, **kwargs)


# --- the doc's examples -------------------------------------------------------------------
def test_logits_curl_example_gives_up_to_50_probabilities(server):
    out = subprocess.run(["bash", "-c", example("logits", server)], capture_output=True, text=True, timeout=120)
    logits = json.loads(out.stdout)
    assert isinstance(logits, dict) and 1 < len(logits) <= 50
    assert all(isinstance(t, str) and 0.0 <= p <= 1.0 for t, p in logits.items())
    assert list(logits.values()) == sorted(logits.values(), reverse=True)
    assert sum(logits.values()) <= 1.0 + 1e-6


def test_logits_curl_example_with_samplers_top_k_3_sums_to_1(server):
    out = subprocess.run(["bash", "-c", example("logits_samplers", server)], capture_output=True, text=True,
                         timeout=120)
    logits = json.loads(out.stdout)
    assert len(logits) == 3 and abs(sum(logits.values()) - 1.0) < 1e-3
    raw = internal(server, "logits", {"prompt": "Who is best, Asuka or Rei? Answer:", "top_logits": 3}).json()
    assert set(logits) == set(raw)  # the same three tokens, renormalized
    greedy = internal(server, "logits", {"prompt": "Who is best, Asuka or Rei? Answer:", "use_samplers": True,
                                         "temperature": 0}).json()
    assert list(greedy.values()) == [1.0] and list(greedy) == list(raw)[:1]


def answers_of(stdout: str) -> list[str]:
    """What the chat loops printed after each "> " prompt (the last prompt met EOF)."""
    return [part.strip() for part in stdout.split("> ")[1:-1]]


def test_python_chat_example_answers_each_line_until_eof(server):
    done = run_script(example("chat", server), PROMPTS)
    assert "EOFError" in done.stderr  # input() at the end of stdin, as in a terminal's Ctrl-D
    answers = answers_of(done.stdout)
    assert len(answers) == 2 and all(answers), done.stdout


def test_python_streaming_chat_example_streams_each_answer(server):
    done = run_script(example("chat_stream", server), PROMPTS)
    assert "EOFError" in done.stderr and "Traceback" in done.stderr
    answers = answers_of(done.stdout)
    assert len(answers) == 2 and all(answers), done.stdout


def test_textgen_webui_own_streaming_chat_loop_stops_at_the_empty_final_delta(server):
    done = run_script(example("chat_stream", server, seed_version=True), PROMPTS)
    assert "KeyError: 'content'" in done.stderr, done.stderr
    assert done.stdout.startswith("> ") and done.stdout[2:].strip()  # the first answer came through


@pytest.mark.timeout(900)  # the example's max_tokens 512, on a shared 2-core machine
def test_python_streaming_completions_example_prints_the_text(server):
    done = run_script(example("completion_stream", server))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("This is a cake recipe:\n\n1.") and len(done.stdout) > 40


@pytest.mark.timeout(900)  # the example's max_tokens 512, on a shared 2-core machine
def test_textgen_webui_own_streaming_completions_loop_stops_at_done(server):
    done = run_script(example("completion_stream", server, seed_version=True))
    assert "json.decoder.JSONDecodeError" in done.stderr
    assert done.stdout.startswith("This is a cake recipe:\n\n1.") and len(done.stdout) > 40


# --- the endpoints' shapes ----------------------------------------------------------------
def test_encode_decode_round_trip_and_token_count(server):
    text = "The quick brown fox jumps over the lazy dog."
    encoded = internal(server, "encode", {"text": text}).json()
    assert encoded["length"] == len(encoded["tokens"]) > 5
    assert internal(server, "token-count", {"text": text}).json() == {"length": encoded["length"]}
    assert internal(server, "decode", {"tokens": encoded["tokens"]}).json()["text"].strip() == text


def test_chat_prompt_is_the_template_rendering_that_chat_tokenizes(server):
    body = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]}
    prompt = internal(server, "chat-prompt", body).json()["prompt"]
    assert "Be brief." in prompt and "Hello!" in prompt and prompt.index("Be brief.") < prompt.index("Hello!")
    counted = httpx.post(server.url + "/tokenize", json=body, timeout=60).json()["count"]
    assert abs(len(internal(server, "encode", {"text": prompt}).json()["tokens"]) - counted) <= 1


def test_bad_input_is_a_400_naming_the_field(server):
    for path, body, field in [("logits", {"prompt": "x", "top_p": 0}, "top_p"),
                              ("logits", {"prompt": ""}, "prompt"),
                              ("logits", {"prompt": "x", "top_logits": 0}, "top_logits"),
                              ("decode", {"tokens": [-5]}, "tokens"),
                              ("encode", {}, "text"),
                              ("chat-prompt", {"messages": []}, "messages")]:
        response = internal(server, path, body)
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["error"]["param"] == field, response.text
    assert httpx.get(server.base_url + "/internal/health").json() == {"status": "ok"}


def test_stop_generation_stops_the_callers_answer_and_no_one_elses(server):
    body = {"messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
            "max_tokens": 2000, "stream": True, "temperature": 0.7, "top_p": 0.95}
    mine, other = {"Authorization": "Bearer key-A"}, {"Authorization": "Bearer key-B"}
    pieces: list[str] = []
    finish: list[str] = []
    started, others_stop_done = threading.Event(), threading.Event()
    more_after_others_stop = 0
    with httpx.stream("POST", server.base_url + "/chat/completions", json=body, headers=mine,
                      timeout=600) as response:
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            choice = json.loads(line[6:])["choices"][0]
            if choice["delta"].get("content"):
                pieces.append(choice["delta"]["content"])
                if others_stop_done.is_set():
                    more_after_others_stop += 1
            if choice["finish_reason"]:
                finish.append(choice["finish_reason"])
            if len(pieces) == 3 and not started.is_set():
                started.set()
                assert httpx.post(server.base_url + "/internal/stop-generation", headers=other).json() == "OK"
                others_stop_done.set()
            if more_after_others_stop == 8:  # another caller's stop left this answer running
                assert httpx.post(server.base_url + "/internal/stop-generation", headers=mine).json() == "OK"
    assert more_after_others_stop >= 8 and finish == ["stop"]
    assert len(pieces) < 200  # stopped, far before max_tokens
