"""Which slots 8 answers decode in, on one 16-slot llama-server: its own choice against ours.

    python bench/llamacpp_slots.py [--streams=8] [--tokens=128] [--repeats=7] [--singles=3]

A bare llama-server as the llama.cpp backend starts it (16 slots, a KV cache per slot of
8,192 tokens, the default model's packaged GGUF, the same threads). Before every load of
``streams`` concurrent greedy streams, ``singles`` short answers one after another (what a
server sees between bursts); then the load's streams take their slots:

- "llama-server's choice": no ``id_slot``; llama-server gives each the least recently used
  free slot (the baseline: what the backend did before it named slots);
- "lowest free slots": ``id_slot`` 0..streams-1, what the backend's slot pool
  (src/engine/llamacpp_slots.py) gives answers that arrive together;
- "every other slot": 0, 2, 4, ...: answers scattered as far as they go.

The three alternate load by load. Prints the median aggregate tokens/s with the ratio to the
baseline, and the slots in use (llama-server's /slots, read during each load) as the number
of runs of neighbouring slots: llama.cpp decodes each run in a forward pass of its own.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

from bench.compare import PROMPTS, Target, stream  # noqa: E402
from bench.llamacpp import bare_llama_server  # noqa: E402
from src.engine.llamacpp_backend import kv_cache_args  # noqa: E402
from src.engine.llamacpp_process import LlamaServer  # noqa: E402

SLOTS, WINDOW = 16, 8192


def runs_of_neighbours(slots: set[int]) -> int:
    """How many runs of consecutive numbers ``slots`` falls into (llama.cpp's micro-batches)."""
    ordered = sorted(slots)
    return sum(1 for i, s in enumerate(ordered) if i == 0 or s != ordered[i - 1] + 1)


async def busy_slots(url: str) -> set[int]:
    import httpx

    async with httpx.AsyncClient(trust_env=False) as http:
        slots = (await http.get(url + "/slots", timeout=30)).json()
    return {int(s["id"]) for s in slots if s["is_processing"]}


async def load(server: LlamaServer, target: Target, client: Any, slots: list[int | None], prompt0: int,
               tokens: int) -> tuple[float, set[int]]:
    """(aggregate tokens/s, the slots in use half-way) of one load of len(slots) streams."""
    def one(slot: int | None) -> Target:
        named = {} if slot is None else {"id_slot": slot}
        return Target(target.name, target.base_url, target.model, {**target.fixed_length, **named})

    start = time.perf_counter()
    answers = asyncio.gather(*(stream(one(s), client, PROMPTS[(prompt0 + i) % 64], tokens)
                               for i, s in enumerate(slots)))
    await asyncio.sleep(0.5)
    in_use = await busy_slots(server.url)
    results = await answers
    return sum(r[1] for r in results) / (time.perf_counter() - start), in_use


async def measure(server: LlamaServer, streams: int, tokens: int, repeats: int, singles: int
                  ) -> dict[str, tuple[list[float], list[int]]]:
    target = Target("bare", server.url + "/v1", "m", {"ignore_eos": True})
    client = target.client()
    lowest: list[int | None] = list(range(streams))
    every_other: list[int | None] = list(range(0, 2 * streams, 2))
    patterns: dict[str, list[int | None]] = {
        "llama-server's choice (least recently used)": [None] * streams,
        "lowest free slots (the backend's id_slot)": lowest,
        "every other slot": every_other,
    }
    found: dict[str, tuple[list[float], list[int]]] = {name: ([], []) for name in patterns}
    await stream(target, client, PROMPTS[0], 4)  # warm-up
    for r in range(repeats):
        for name, slots in patterns.items():
            for i in range(singles):
                await stream(target, client, PROMPTS[32 + (r * singles + i) % 32], 4)
            await asyncio.sleep(0.5)
            rate, in_use = await load(server, target, client, slots, r * streams, tokens)
            found[name][0].append(rate)
            found[name][1].append(runs_of_neighbours(in_use))
    await client.close()
    return found


def main(streams: int = 8, tokens: int = 128, repeats: int = 7, singles: int = 3) -> None:
    if 2 * streams > SLOTS:
        raise SystemExit(f"--streams is at most {SLOTS // 2} (every other slot of {SLOTS})")
    binary, gguf, threads = bare_llama_server()
    server = LlamaServer(binary, ["-m", gguf, "--alias", "m", "-t", str(threads), "-np", str(SLOTS),
                                  *kv_cache_args(WINDOW, SLOTS * WINDOW, SLOTS), "--jinja", "--no-webui",
                                  "--log-disable"])
    server.start()
    try:
        found = asyncio.run(measure(server, streams, tokens, repeats, singles))
    finally:
        server.stop()
    print(f"SmolLM2-135M-Instruct Q4_1 GGUF, {threads} threads, one llama-server with {SLOTS} slots "
          f"(a cache per slot), {streams} x {tokens}-token greedy streams, median of {repeats} loads "
          f"(alternating), {singles} single answers before each\n")
    print("| slots | aggregate tokens/s | ratio | runs of neighbouring slots (per load) |")
    print("|---|---|---|---|")
    base = statistics.median(next(iter(found.values()))[0])
    for name, (rates, runs) in found.items():
        rate = statistics.median(rates)
        print(f"| {name} | {rate:.1f} | {rate / base:.3f}x | {', '.join(map(str, runs))} |")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
