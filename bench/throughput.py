"""Throughput under concurrent load through the whole stack (openai SDK -> worker -> engine).

    python bench/throughput.py [--tokens=96] [--streams=1,2,4,8,16] [--baseline=REF]
                               [--runs=5] [--flags="--load_8bit=True"] [--plot=PATH]

Prints two tables and writes a plot:

1. Concurrency: for each number of streams N, N greedy streamed answers of ``tokens``
   tokens each (min_new_tokens = max_tokens, so every answer has the same length) sent at
   once: aggregate tokens/s, the slowest time to first token, and the same N requests sent
   one after another (the sequential baseline, what a one-at-a-time engine gives; its first
   tokens are counted from the start of the load, as if all N had been sent at once). Ratios
   are against one stream measured in the same run.
2. Single stream against a baseline commit (``--baseline``, default: the last commit before
   the continuous-batching engine): both servers run side by side from their own checkouts
   (a git worktree of the baseline), and single-stream answers alternate between them, so
   drift hits both alike. Tokens/s is the median of ``runs`` answers of ``tokens`` tokens;
   time to first token the median of 5 x ``runs`` short answers.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

from tests.server import RemoteServer  # noqa: E402

BASELINE = "ebd1671"  # the last commit with the one-request-at-a-time engine
PROMPTS = [f"Write a long story about a lighthouse keeper and storm number {i}." for i in range(64)]
SETTLE_SECONDS = 1.0  # torch's OpenMP threads spin briefly after a generation
TTFT_TOKENS = 8


async def _stream(client, model: str, prompt: str, tokens: int) -> tuple[float, int, float]:
    """(time to first token, completion tokens, seconds) of one streamed greedy answer."""
    start = time.perf_counter()
    first, count = None, 0
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=tokens,
        temperature=0, stream=True, stream_options={"include_usage": True},
        extra_body={"min_new_tokens": tokens, "repetition_penalty": 1.0},
    )
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        if chunk.usage:
            count = chunk.usage.completion_tokens
    return first or 0.0, count, time.perf_counter() - start


async def _load(client, model: str, streams: int, tokens: int, concurrent: bool) -> dict[str, float]:
    prompts = PROMPTS[:streams]
    start = time.perf_counter()
    if concurrent:
        results = await asyncio.gather(*(_stream(client, model, p, tokens) for p in prompts))
    else:  # as a one-at-a-time server would serve them: each first token counted from the start
        results = []
        for p in prompts:
            queued = time.perf_counter() - start
            first, count, seconds = await _stream(client, model, p, tokens)
            results.append((queued + first, count, seconds))
    seconds = time.perf_counter() - start
    return {"tps": sum(r[1] for r in results) / seconds, "worst_first": max(r[0] for r in results),
            "seconds": seconds, "one_answer": statistics.median(r[2] for r in results)}


async def _concurrency(server: RemoteServer, streams: list[int], tokens: int) -> list[dict[str, float]]:
    client, model = server.async_client(timeout=600), server.model()
    await _stream(client, model, PROMPTS[0], 4)  # warm-up
    rows = []
    for n in streams:
        await asyncio.sleep(SETTLE_SECONDS)
        together = await _load(client, model, n, tokens, concurrent=True)
        await asyncio.sleep(SETTLE_SECONDS)
        alone = await _load(client, model, n, tokens, concurrent=False)
        rows.append({"streams": n, **together, "seq_tps": alone["tps"], "seq_worst_first": alone["worst_first"],
                     "seq_answer": alone["one_answer"]})
    return rows


async def _single(servers: dict[str, RemoteServer], tokens: int, runs: int) -> dict[str, dict[str, float]]:
    """Median single-stream tokens/s and time to first token per server, interleaved."""
    found: dict[str, dict[str, list[float]]] = {name: {"tps": [], "first": []} for name in servers}
    clients = {name: (s.async_client(timeout=600), s.model()) for name, s in servers.items()}
    for client, model in clients.values():
        await _stream(client, model, PROMPTS[0], 4)
    for i in range(runs * 5):
        for name, (client, model) in clients.items():
            await asyncio.sleep(SETTLE_SECONDS)
            first, _, _ = await _stream(client, model, PROMPTS[i % 8], TTFT_TOKENS)
            found[name]["first"].append(first)
            if i < runs:
                await asyncio.sleep(SETTLE_SECONDS)
                _, count, seconds = await _stream(client, model, PROMPTS[0], tokens)
                found[name]["tps"].append(count / seconds)
    med = statistics.median
    return {name: {"tps": med(v["tps"]), "first": med(v["first"])} for name, v in found.items()}


def _worktree(ref: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), ref],
                   check=True, capture_output=True)
    return where


def _plot(rows: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = [r["streams"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(streams, [r["tps"] for r in rows], "o-", label="concurrent (continuous batching)")
    left.plot(streams, [r["seq_tps"] for r in rows], "s--", label="same requests one at a time")
    left.set(xlabel="concurrent streams", ylabel="aggregate tokens/s", xscale="log", xticks=streams)
    left.set_xticklabels([str(s) for s in streams])
    left.legend()
    right.plot(streams, [r["worst_first"] for r in rows], "o-", label="concurrent")
    right.plot(streams, [r["seq_worst_first"] for r in rows], "s--", label="one at a time")
    right.set(xlabel="concurrent streams", ylabel="slowest time to first token (s)", xscale="log",
              xticks=streams)
    right.set_xticklabels([str(s) for s in streams])
    right.legend()
    fig.suptitle("96-token greedy streams through the OpenAI API (2 CPU cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(tokens: int = 96, streams: str = "1,2,4,8,16", baseline: str = BASELINE, runs: int = 5,
         flags: str = "", plot: str = "docs/images/throughput.png") -> None:
    # fire reads --streams=1,8 as a tuple and --streams=8 as an int
    counts = [int(s) for s in (streams if isinstance(streams, (tuple, list)) else str(streams).split(","))]
    extra = [f for f in str(flags).split() if f]
    with tempfile.TemporaryDirectory() as tmp:
        with RemoteServer(Path(tmp) / "new", *extra) as new:
            rows = asyncio.run(_concurrency(new, counts, tokens))
            single: dict[str, dict[str, float]] = {}
            if baseline:
                tree = _worktree(baseline, Path(tmp) / "baseline")
                try:
                    with RemoteServer(Path(tmp) / "old", *extra, root=tree) as old:
                        single = asyncio.run(_single({"baseline": old, "this": new}, tokens, runs))
                finally:
                    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                                   check=False, capture_output=True)
    one = rows[0]["tps"]
    print(f"{tokens}-token greedy streams through the openai SDK -> worker -> engine; flags: "
          f"{' '.join(extra) or '(defaults)'}\n")
    print("| streams | aggregate tokens/s | vs 1 stream | slowest first token | one at a time: tokens/s | "
          "one at a time: slowest first token | one whole single answer |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['streams']:.0f} | {r['tps']:.1f} | {r['tps'] / one:.2f}x | {r['worst_first']:.2f} s | "
              f"{r['seq_tps']:.1f} | {r['seq_worst_first']:.1f} s | {r['seq_answer']:.2f} s |")
    if single:
        b, t = single["baseline"], single["this"]
        print(f"\nSingle stream, interleaved with the baseline {baseline} (median of {runs} answers; "
              f"first token: median of {runs * 5} {TTFT_TOKENS}-token answers)\n")
        print("| measure | baseline | this | ratio / difference |")
        print("|---|---|---|---|")
        print(f"| tokens/s | {b['tps']:.1f} | {t['tps']:.1f} | {t['tps'] / b['tps']:.3f}x |")
        print(f"| time to first token | {b['first'] * 1000:.1f} ms | {t['first'] * 1000:.1f} ms | "
              f"{(t['first'] - b['first']) * 1000:+.1f} ms |")
    if plot:
        _plot(rows, ROOT / plot)
        print(f"\nplot: {plot}")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
