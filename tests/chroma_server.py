"""A real Chroma server (`chroma run`) on a free loopback port, its data in a temp dir.

    with ChromaRun(tmp_path) as chroma:
        DocumentService(..., chroma_server=ChromaServer(chroma.url).connect())
        RemoteServer(workdir, f"--chroma_server={chroma.url}")

Share one per test module (``scope="module"`` fixture); it starts in about a second.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import free_port
from tests.server import ServerProcess, answers

#: The `chroma` console script of this interpreter's chromadb.
CHROMA_CLI = "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; sys.exit(app())"


class ChromaRun(ServerProcess):
    """`chroma run --path <dir>/data --host 127.0.0.1 --port <free>` as a subprocess."""

    log_name = "chroma.log"
    start_timeout = 60.0
    stop_timeout = 15.0

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-c", CHROMA_CLI, "run", "--path", str(self.workdir / "data"),
                "--host", "127.0.0.1", "--port", str(self.port)]

    def env(self) -> dict[str, str]:
        return {**super().env(), "ANONYMIZED_TELEMETRY": "False"}

    def ready(self) -> bool:
        return answers(self.url + "/api/v2/heartbeat")

