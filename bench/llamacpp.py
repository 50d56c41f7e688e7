"""Our whole stack on the llama.cpp backend against llama.cpp's own server, same GGUF, same run.

    python bench/llamacpp.py [--tokens=128] [--runs=7] [--ttft_runs=21] [--streams=8] [--repeats=7] [--prompts=10]
                             [--ours="--concurrency_count=8"]  (flags for our server)

Both sides run the default model's packaged GGUF on the same llama-server binary
(scripts/install_llamacpp.sh) with the same threads: "llama.cpp" is a bare llama-server with
8 parallel slots; "ours" is ``generate.py --llm_backend=llamacpp`` on its defaults, reached
through the openai SDK -> API worker -> engine -> its supervised llama-server. Prints:

1. single stream: median tokens/s of ``runs`` answers of ``tokens`` tokens, p50 time to
   first token of ``ttft_runs`` 4-token answers (the sides alternate);
2. ``streams`` concurrent streams: median aggregate tokens/s and slowest first token of ``repeats`` loads, the sides alternating;
3. greedy answers (48 tokens) to ``prompts`` prompts: equal or not, with repetition_penalty
   1.0 (llama.cpp's default) and with h2oGPT's default 1.07 (ours only).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

from bench.compare import Target, concurrent, single  # noqa: E402
from src.engine.llamacpp_backend import server_path  # noqa: E402
from src.engine.llamacpp_process import LlamaServer  # noqa: E402
from src.engine.model_source import resolve_model  # noqa: E402
from src.settings import Settings  # noqa: E402
from src.settings_model import DEFAULT_BASE_MODEL  # noqa: E402
from tests.server import RemoteServer  # noqa: E402

QUESTIONS = ["What is the capital of France?", "Name three colours.", "Write a haiku about tea.",
             "Explain photosynthesis in one sentence.", "What is 12 times 12?", "Give me a fun fact about cats.",
             "Translate 'good morning' to Spanish.", "What is the boiling point of water?",
             "List two planets.", "Why is the sky blue?"]


def _greedy(target: Target, prompts: list[str], extra: dict) -> list[str]:
    import openai

    client = openai.OpenAI(base_url=target.base_url, api_key="EMPTY", max_retries=0, timeout=120)
    return [client.chat.completions.create(model=target.model, messages=[{"role": "user", "content": q}],
                                           max_tokens=48, temperature=0, extra_body=extra).choices[0].message.content
            for q in prompts]


def bare_llama_server() -> tuple[str, str, int]:
    """(llama-server binary, the default model's packaged GGUF, the threads ours would use)."""
    binary = server_path()
    if binary is None:
        raise SystemExit("llama-server is not installed: bash scripts/install_llamacpp.sh")
    source = resolve_model(DEFAULT_BASE_MODEL)
    return binary, str(Path(source.path) / str(source.gguf_file)), Settings().resolved_threads()


def main(tokens: int = 128, runs: int = 7, ttft_runs: int = 21, streams: int = 8, repeats: int = 7,
         prompts: int = 10, ours: str = "") -> None:
    binary, gguf, threads = bare_llama_server()
    bare = LlamaServer(binary, ["-m", gguf, "--alias", DEFAULT_BASE_MODEL, "-c", str(8192 * streams),
                                "-np", str(streams), "-t", str(threads), "--jinja", "--no-webui"])
    bare.start()
    try:
        with tempfile.TemporaryDirectory() as tmp, RemoteServer(Path(tmp), "--llm_backend=llamacpp", *ours.split()) as server:
            theirs_t = Target("llama.cpp", bare.url + "/v1", DEFAULT_BASE_MODEL, {"ignore_eos": True})
            ours_t = Target("ours", server.base_url, server.model(),
                            {"min_new_tokens": "N", "repetition_penalty": 1.0})
            one = asyncio.run(single([theirs_t, ours_t], tokens, runs, ttft_runs))
            many = asyncio.run(concurrent([theirs_t, ours_t], streams, tokens, repeats))
            asked = QUESTIONS[:prompts]
            base = _greedy(theirs_t, asked, {})
            same = _greedy(ours_t, asked, {"repetition_penalty": 1.0})
            h2o = _greedy(ours_t, asked, {})
    finally:
        bare.stop()
    t, o = one["llama.cpp"], one["ours"]
    mt, mo = many["llama.cpp"], many["ours"]
    print(f"SmolLM2-135M-Instruct Q4_1 GGUF, {threads} threads, llama-server from llama-cpp-python 0.3.36; "
          f"{tokens}-token greedy streams through the openai SDK\n")
    print("| measure | llama.cpp's server | ours (llama.cpp backend) | ratio / difference |")
    print("|---|---|---|---|")
    print(f"| single stream tokens/s (median of {runs}) | {t['tps']:.1f} | {o['tps']:.1f} | {o['tps'] / t['tps']:.3f}x |")
    print(f"| time to first token (p50 of {ttft_runs}) | {t['first'] * 1000:.1f} ms | {o['first'] * 1000:.1f} ms | "
          f"{(o['first'] - t['first']) * 1000:+.1f} ms |")
    print(f"| {streams} streams aggregate tokens/s (median of {repeats}, alternating) | {mt['tps']:.1f} | {mo['tps']:.1f} | "
          f"{mo['tps'] / mt['tps']:.3f}x |")
    print(f"| {streams} streams slowest first token | {mt['worst_first']:.2f} s | {mo['worst_first']:.2f} s | "
          f"{mo['worst_first'] / mt['worst_first']:.2f}x |")
    equal = sum(a == b for a, b in zip(base, same, strict=True))
    h2o_equal = sum(a == b for a, b in zip(base, h2o, strict=True))
    print(f"\nGreedy answers (48 tokens) equal to llama.cpp's server's: {equal}/{len(asked)} with "
          f"repetition_penalty 1.0; {h2o_equal}/{len(asked)} with h2oGPT's default 1.07")
    for q, a, b in zip(asked, base, same, strict=True):
        if a != b:
            print(f"- differs: {q!r}\n  llama.cpp: {a!r}\n  ours:      {b!r}")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
