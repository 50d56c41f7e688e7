"""A real `python generate.py` serving the Gradio UI on a free port, for end-to-end tests.

The app runs with the network guard loaded (tests/offline_guard.py: any non-loopback
connection raises), in its own temp directory (Gradio uploads, document stores), with the
OpenAI server off. Share one per test module: start-up costs a model load.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import free_port
from tests.server import GuardedApp


class GradioApp(GuardedApp):
    """generate.py serving the UI only; ``url`` once :meth:`start` returns."""

    def __init__(self, workdir: Path, *flags: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        super().__init__(
            workdir,
            ["--openai_server=False", "--server_name=127.0.0.1", f"--server_port={self.port}", *flags],
        )

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "config", timeout=2) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError as exc:
            return exc.code in (401, 403)  # --auth: the server is up, the config needs a login
        except (urllib.error.URLError, OSError):
            return False
