"""A real `python generate.py` serving the Gradio UI on a free port, for end-to-end tests.

The app runs with the network guard loaded (tests/offline_guard.py: any non-loopback
connection raises), in its own temp directory (Gradio uploads, document stores), with the
OpenAI server off. Share one per test module: start-up costs a model load.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import ROOT, free_port

GUARDED_RUN = (
    "import sys, runpy; sys.path.insert(0, {root!r}); import tests.offline_guard;"
    "sys.argv = ['generate.py'] + sys.argv[1:]; runpy.run_path({script!r}, run_name='__main__')"
)


class GradioApp:
    """generate.py as a subprocess; ``url`` once :meth:`start` returns."""

    def __init__(self, workdir: Path, *flags: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.flags = [
            "--openai_server=False", "--server_name=127.0.0.1", f"--server_port={self.port}", *flags,
        ]
        self.log_path = workdir / "app.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 240.0) -> GradioApp:
        env = dict(os.environ, GRADIO_TEMP_DIR=str(self.workdir / "gradio_tmp"))
        code = GUARDED_RUN.format(root=str(ROOT), script=str(ROOT / "generate.py"))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, *self.flags], cwd=self.workdir, env=env,
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"generate.py exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2) as response:
                    if response.status == 200:
                        return self
            except urllib.error.HTTPError as exc:
                if exc.code in (401, 403):  # --auth: the server is up, the config needs a login
                    return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"generate.py did not serve {self.url} in {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
