"""`python generate.py --cli=True` with piped input, and the whole run with the network blocked."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT
from tests.server import GUARDED_RUN


def _clean_env() -> dict[str, str]:
    """The environment without the offline variables, to prove the app sets them itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "GRADIO_"))}
    env.pop("ANONYMIZED_TELEMETRY", None)
    return env


def test_piped_cli_prints_one_answer_per_prompt():
    result = subprocess.run(
        [sys.executable, "generate.py", "--cli=True", "--max_new_tokens=12", "--temperature=0"],
        input="What is the capital of France?\n\nName a color.\n",
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=_clean_env(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.strip() for line in lines)
    assert "Paris" in lines[0]


def test_guard_blocks_non_loopback_connections():
    code = (
        "import socket, tests.offline_guard as g\n"
        "try:\n    socket.create_connection(('1.1.1.1', 443), timeout=2)\nexcept g.NetworkAccessError:\n"
        "    print('blocked')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "blocked", result.stderr


def test_full_generation_runs_with_the_network_blocked():
    result = subprocess.run(
        [sys.executable, "-c", GUARDED_RUN.format(root=str(ROOT), script=str(ROOT / "generate.py")), "--cli=True", "--max_new_tokens=8", "--temperature=0"],
        input="Say hello.\n", cwd=ROOT, capture_output=True, text=True, timeout=300, env=_clean_env(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "blocked connection" not in result.stderr
    assert len(result.stdout.splitlines()) == 1 and result.stdout.strip()


def test_interactive_cli_streams_and_keeps_history():
    import pty
    import select
    import time

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "generate.py", "--cli=True", "--max_new_tokens=16", "--temperature=0"],
        stdin=follower, stdout=follower, stderr=subprocess.DEVNULL, cwd=ROOT, env=_clean_env(),
    )
    os.close(follower)
    seen = b""

    def read_until(marker: bytes, count: int, timeout: float = 240) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while seen.count(marker) < count and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(leader, 4096)
                except OSError:
                    break

    try:
        read_until(b">>> ", 1)
        os.write(leader, b"My dog is called Rex.\n")
        read_until(b">>> ", 2)
        os.write(leader, b"What is my dog called?\n")
        read_until(b">>> ", 3)
        os.write(leader, b"\x04")  # Ctrl-D ends the chat
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    text = seen.decode(errors="replace")
    assert text.count(">>> ") == 3
    second_answer = text.split(">>> ")[2]
    assert "Rex" in second_answer.split("What is my dog called?")[-1]
