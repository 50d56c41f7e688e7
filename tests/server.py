"""A real `python generate.py` serving the OpenAI API on a free port, for end-to-end tests.

Like vLLM's RemoteOpenAIServer: the app runs as a subprocess with the network guard
(tests/offline_guard.py), in its own working directory, with the Gradio UI off unless
asked. Share one per test module (``scope="module"`` fixture): start-up loads the model.

    with RemoteServer(tmp_path, "--openai_workers=2") as server:
        client = server.client()          # openai.OpenAI on server.base_url
        server.health()["active_requests"]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, free_port

#: The backend generate.py runs on in tests that do not choose one (H2OGPT_TEST_BACKEND).
TEST_BACKEND = os.environ.get("H2OGPT_TEST_BACKEND", "transformers")

GUARDED_RUN = (
    "import sys, runpy; sys.path.insert(0, {root!r}); import tests.offline_guard;"
    "sys.argv = ['generate.py'] + sys.argv[1:]; runpy.run_path({script!r}, run_name='__main__')"
)


class GuardedApp:
    """generate.py as a subprocess under the network guard, in its own working directory.

    Subclasses give the flags and say when the app is ready; ``start`` waits for that.
    """

    log_name = "app.log"

    def __init__(self, workdir: Path, flags: list[str], root: Path = ROOT) -> None:
        self.workdir = Path(workdir)
        if not any(f.startswith("--llm_backend") for f in flags) and (Path(root) / "src/engine/llamacpp_backend.py").exists():
            # the engine-specific suites pin transformers; llama.cpp runs where a test asks for it
            flags = [*flags, f"--llm_backend={TEST_BACKEND}"]
        self.flags = flags
        self.root = Path(root)  # the checkout to run (a benchmark may run an older commit)
        self.log_path = self.workdir / self.log_name
        self.proc: subprocess.Popen[bytes] | None = None

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 240.0) -> Any:
        self.workdir.mkdir(parents=True, exist_ok=True)
        code = GUARDED_RUN.format(root=str(self.root), script=str(self.root / "generate.py"))
        env = dict(os.environ, GRADIO_TEMP_DIR=str(self.workdir / "gradio_tmp"))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, *self.flags], cwd=self.workdir, env=env,
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"generate.py exited with {self.proc.returncode}:\n{self.log()}")
            if self.ready():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"generate.py did not come up in {timeout:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


class RemoteServer(GuardedApp):
    """generate.py with the OpenAI API (and by default no UI) on 127.0.0.1:<free port>."""

    log_name = "server.log"

    def __init__(self, workdir: Path, *flags: str, gradio: bool = False, root: Path = ROOT) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        all_flags = [f"--gradio={gradio}", "--server_name=127.0.0.1", f"--openai_port={self.port}", *flags]
        self.gradio_url = ""  # the UI's address, with gradio=True
        if gradio:
            gradio_port = free_port()
            self.gradio_url = f"http://127.0.0.1:{gradio_port}/"
            all_flags.append(f"--server_port={gradio_port}")
        super().__init__(workdir, all_flags, root)

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def __enter__(self) -> RemoteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- helpers -----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        response = httpx.get(self.url + "/health", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def worker_pids(self) -> list[int]:
        """Pids of the API worker processes (children of the engine process)."""
        import psutil

        assert self.proc is not None
        pids = []
        for child in psutil.Process(self.proc.pid).children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE and "openai_server.worker" in " ".join(
                    child.cmdline()
                ):
                    pids.append(child.pid)
            except psutil.Error:  # it just exited
                continue
        return sorted(pids)

    def client(self, api_key: str = "EMPTY", **kwargs: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **kwargs)

    def async_client(self, api_key: str = "EMPTY", **kwargs: Any) -> Any:
        import openai

        return openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **kwargs)

    def model(self) -> str:
        return str(httpx.get(self.base_url + "/models", timeout=10).json()["data"][0]["id"])
