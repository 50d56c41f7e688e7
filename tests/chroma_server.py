"""A real Chroma server (`chroma run`) on a free loopback port, its data in a temp dir.

    with ChromaRun(tmp_path) as chroma:
        DocumentService(..., chroma_server=ChromaServer(chroma.url).connect())
        RemoteServer(workdir, f"--chroma_server={chroma.url}")

Share one per test module (``scope="module"`` fixture); it starts in about a second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

#: The `chroma` console script of this interpreter's chromadb.
CHROMA_CLI = "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; sys.exit(app())"


class ChromaRun:
    """`chroma run --path <dir>/data --host 127.0.0.1 --port <free>` as a subprocess."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "chroma.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/api/v2/heartbeat", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 60.0) -> ChromaRun:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-c", CHROMA_CLI, "run", "--path", str(self.workdir / "data"),
                   "--host", "127.0.0.1", "--port", str(self.port)]
        env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, cwd=self.workdir, env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.proc.returncode}:\n{self.log()}")
            if self.ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"chroma run did not answer in {timeout:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def __enter__(self) -> ChromaRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
