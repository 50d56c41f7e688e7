"""llama-server's KV cache layouts for 16 slots, against a bare 8-slot server, in one run.

    python bench/llamacpp_kv.py [--streams=8] [--tokens=128] [--repeats=7] [--runs=5]

Bare llama-servers on the default model's packaged GGUF, all started at once and asked in
turn (bench/compare.py): "8 slots" is bench/llamacpp.py's baseline (a cache per slot of 8,192
tokens); the others have 16 slots as the llama.cpp backend does: a cache per slot of the
whole window (the backend's default when --kv_cache_gb holds it), and one cache of 2 GiB
(93,184 tokens) that all slots share (the backend's layout when it does not), with and
without llama.cpp's saving of idle slots (``--no-cache-idle-slots``; the backend keeps the
saving, without which idle slots' cached prompts could fill a shared cache). Prints each
layout's aggregate tokens/s and slowest first token of ``streams`` concurrent greedy streams,
and one stream's tokens/s and first token, with the ratios to the baseline.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

from bench.compare import Target, concurrent, single  # noqa: E402
from bench.llamacpp import bare_llama_server  # noqa: E402
from src.engine.llamacpp_backend import kv_cache_args  # noqa: E402
from src.engine.llamacpp_process import LlamaServer  # noqa: E402

WINDOW, SHARED = 8192, 93184
LAYOUTS = {
    "8 slots, per slot (baseline)": ["-c", str(8 * WINDOW), "-np", "8"],
    "16 slots, per slot (default)": [*kv_cache_args(WINDOW, 16 * WINDOW, 16), "-np", "16"],
    "16 slots, shared": [*kv_cache_args(WINDOW, SHARED, 16), "-np", "16"],
    "16 slots, shared, no idle-slot saving": [*kv_cache_args(WINDOW, SHARED, 16), "-np", "16",
                                              "--no-cache-idle-slots"],
}


def main(streams: int = 8, tokens: int = 128, repeats: int = 7, runs: int = 5) -> None:
    binary, gguf, threads = bare_llama_server()
    servers = {name: LlamaServer(binary, ["-m", gguf, "--alias", "m", "-t", str(threads), "--jinja",
                                          "--no-webui", "--log-disable", *flags])
               for name, flags in LAYOUTS.items()}
    try:
        for server in servers.values():
            server.start()
        targets = [Target(name, s.url + "/v1", "m", {"ignore_eos": True}) for name, s in servers.items()]
        many = asyncio.run(concurrent(targets, streams, tokens, repeats))
        one = asyncio.run(single(targets, tokens, runs, runs))
    finally:
        for server in servers.values():
            server.stop()
    base = next(iter(LAYOUTS))
    b, bo = many[base], one[base]
    print(f"SmolLM2-135M-Instruct Q4_1 GGUF, {threads} threads, {tokens}-token greedy streams, "
          f"medians of {repeats} loads / {runs} single streams\n")
    print(f"| KV cache | {streams} streams tokens/s | ratio | slowest first token | ratio | "
          "1 stream tokens/s | ratio | first token |")
    print("|---|---|---|---|---|---|---|---|")
    for name in LAYOUTS:
        m, o = many[name], one[name]
        print(f"| {name} | {m['tps']:.1f} | {m['tps'] / b['tps']:.2f}x | {m['worst_first']:.2f} s | "
              f"{m['worst_first'] / b['worst_first']:.2f}x | {o['tps']:.1f} | {o['tps'] / bo['tps']:.2f}x | "
              f"{o['first'] * 1000:.1f} ms |")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
