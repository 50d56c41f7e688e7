"""CPU per streamed token of the API worker and of the engine: this tree against a baseline commit.

    python bench/cpu_per_token.py [--baseline=8f5f77a] [--tokens=128] [--runs=10] [--backend=llamacpp]

Both sides are ``generate.py`` on the default model, the baseline checked out in a temporary
git worktree (its code, this machine's installed packages and llama-server). Both servers are
up together and the runs alternate, so drift hits both alike. Each run streams one greedy
answer of ``tokens`` tokens through the openai SDK; the CPU time (user + system, psutil) the
engine process and the worker process used during the run is divided by the tokens the
answer reported. llama-server's own CPU (a child process) is not counted: it is the same
binary on both sides. Prints, per side, the CPU of all runs over the tokens of all runs and
the ratio (this tree / baseline): below 1 is less CPU per token than the baseline. Totals,
not per-run medians: the kernel counts CPU time in 10 ms ticks, and a 512-token run costs a
worker about 200 ms, so one run's figure moves in steps of 5%.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

from tests.server import RemoteServer  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper and the sea."


def _cpu(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def _run(server: RemoteServer, tokens: int) -> tuple[float, float, int]:
    """(engine s, worker s) of CPU and the tokens of one streamed answer."""
    import openai

    assert server.proc is not None
    engine, workers = [server.proc.pid], server.worker_pids()
    client = openai.OpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0, timeout=300)
    before = _cpu(engine), _cpu(workers)
    got = 0
    stream = client.chat.completions.create(
        model=server.model(), messages=[{"role": "user", "content": PROMPT}], max_tokens=tokens,
        temperature=0, stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.usage is not None:
            got = chunk.usage.completion_tokens
    after = _cpu(engine), _cpu(workers)
    return after[0] - before[0], after[1] - before[1], got


def main(baseline: str = "8f5f77a", tokens: int = 128, runs: int = 10, backend: str = "llamacpp") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), baseline],
                       check=True, capture_output=True)
        try:
            flags = (f"--llm_backend={backend}", "--openai_workers=1")
            with RemoteServer(Path(tmp) / "ours", *flags) as ours, \
                    RemoteServer(Path(tmp) / "base", *flags, root=tree) as base:
                sides = {"this tree": ours, f"baseline {baseline}": base}
                for server in sides.values():
                    _run(server, 8)  # warm-up
                results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in sides}
                for _ in range(runs):
                    for name, server in sides.items():
                        results[name].append(_run(server, tokens))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                           check=False, capture_output=True)
    per_token = {}
    for name, rows in results.items():
        count = max(sum(r[2] for r in rows), 1)
        per_token[name] = (sum(r[0] for r in rows) * 1000 / count, sum(r[1] for r in rows) * 1000 / count)
    print(f"CPU per streamed token, {backend} backend, {tokens}-token greedy streams, "
          f"all CPU over all tokens of {runs} alternating runs")
    print("| side | engine ms/token | worker ms/token | engine + worker |")
    print("|---|---|---|---|")
    for name, (engine, worker) in per_token.items():
        print(f"| {name} | {engine:.3f} | {worker:.3f} | {engine + worker:.3f} |")
    (ours_e, ours_w), (base_e, base_w) = per_token.values()
    print(f"| ratio (this tree / baseline) | {ours_e / base_e:.2f}x | {ours_w / base_w:.2f}x | "
          f"{(ours_e + ours_w) / (base_e + base_w):.2f}x |")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
