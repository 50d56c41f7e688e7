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


def answers(url: str) -> bool:
    """The URL answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class ServerProcess:
    """A server run as a subprocess for tests: started in its own working directory, waited
    for until :meth:`ready`, stopped with SIGTERM (then killed), its output kept in a log.

    Subclasses give :meth:`command` and :meth:`ready` (and may extend :meth:`env`).
    ``own_group``: the server has children of its own (vLLM's engine core), so it starts in
    its own process group and the signals go to the whole group.
    """

    log_name = "server.log"
    own_group = False
    start_timeout = 240.0
    stop_timeout = 30.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.log_path = self.workdir / self.log_name
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float | None = None) -> Any:
        timeout = timeout or self.start_timeout
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), cwd=self.workdir, env=self.env(), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=self.own_group)
        name = type(self).__name__
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}:\n{self.log()}")
            if self.ready():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{name} did not come up in {timeout:.0f} s:\n{self.log()}")

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.own_group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class GuardedApp(ServerProcess):
    """generate.py as a subprocess under the network guard, in its own working directory.

    Subclasses give the flags and say when the app is ready; ``start`` waits for that.
    """

    log_name = "app.log"

    def __init__(self, workdir: Path, flags: list[str], root: Path = ROOT) -> None:
        super().__init__(workdir)
        if not any(f.startswith("--llm_backend") for f in flags) and (Path(root) / "src/engine/llamacpp_backend.py").exists():
            # the engine-specific suites pin transformers; llama.cpp runs where a test asks for it
            flags = [*flags, f"--llm_backend={TEST_BACKEND}"]
        self.flags = flags
        self.root = Path(root)  # the checkout to run (a benchmark may run an older commit)

    def command(self) -> list[str]:
        code = GUARDED_RUN.format(root=str(self.root), script=str(self.root / "generate.py"))
        return [sys.executable, "-c", code, *self.flags]

    def env(self) -> dict[str, str]:
        return dict(os.environ, GRADIO_TEMP_DIR=str(self.workdir / "gradio_tmp"))


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
        return answers(self.url + "/health")

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
