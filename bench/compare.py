"""Two OpenAI-compatible endpoints measured side by side in one run, through the openai SDK.

Used by bench/llamacpp.py (our stack on the llama.cpp backend vs llama.cpp's own server) and
bench/remote.py (a front instance vs the remote engine it forwards to). Every answer is a
greedy stream of a fixed length (the end of turn ignored), so both sides decode the same
number of tokens; single streams alternate between the sides, so drift hits both alike.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

PROMPTS = [f"Write a long story about a lighthouse keeper and storm number {i}." for i in range(64)]
SETTLE_SECONDS = 0.5


@dataclass
class Target:
    """One side: an OpenAI base URL, its model id, and the extra_body that fixes the length."""

    name: str
    base_url: str
    model: str
    fixed_length: dict[str, Any] = field(default_factory=dict)  # e.g. {"min_new_tokens": N} or ignore_eos

    def client(self) -> Any:
        """A client that opens a connection per request, on both sides alike: llama-server
        closes a kept-alive connection after a few requests without saying so, and the next
        request on it fails (the SDK would hide that behind a retry)."""
        import httpx
        import openai

        http = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0), timeout=600)
        return openai.AsyncOpenAI(base_url=self.base_url, api_key="EMPTY", max_retries=0, http_client=http)


async def stream(target: Target, client: Any, prompt: str, tokens: int) -> tuple[float, int, float]:
    """(time to first token, completion tokens, seconds) of one streamed greedy answer."""
    start = time.perf_counter()
    first, count, chunks = None, 0, 0
    extra = {k: (tokens if v == "N" else v) for k, v in target.fixed_length.items()}
    response = await client.chat.completions.create(
        model=target.model, messages=[{"role": "user", "content": prompt}], max_tokens=tokens, temperature=0,
        stream=True, stream_options={"include_usage": True}, extra_body=extra)
    async for chunk in response:
        if chunk.choices and chunk.choices[0].delta.content:
            chunks += 1
            if first is None:
                first = time.perf_counter() - start
        if chunk.usage:
            count = chunk.usage.completion_tokens
    return first or 0.0, count or chunks, time.perf_counter() - start


async def single(targets: list[Target], tokens: int, runs: int, ttft_runs: int, ttft_tokens: int = 4) -> dict[str, dict[str, float]]:
    """Per target: median tokens/s over ``runs`` answers and p50 time to first token over
    ``ttft_runs`` short answers, the targets alternating."""
    found: dict[str, dict[str, list[float]]] = {t.name: {"tps": [], "first": []} for t in targets}
    clients = {t.name: t.client() for t in targets}
    for t in targets:
        await stream(t, clients[t.name], PROMPTS[0], 4)  # warm-up
    for i in range(max(runs, ttft_runs)):
        for t in targets:
            if i < ttft_runs:
                await asyncio.sleep(SETTLE_SECONDS)
                first, _, _ = await stream(t, clients[t.name], PROMPTS[i % 8], ttft_tokens)
                found[t.name]["first"].append(first)
            if i < runs:
                await asyncio.sleep(SETTLE_SECONDS)
                _, count, seconds = await stream(t, clients[t.name], PROMPTS[0], tokens)
                found[t.name]["tps"].append(count / seconds)
    for client in clients.values():
        await client.close()  # in this event loop: asyncio.run closes it after
    med = statistics.median
    return {name: {"tps": med(v["tps"]), "first": med(v["first"])} for name, v in found.items()}


async def concurrent(targets: list[Target], streams: int, tokens: int, repeats: int = 5) -> dict[str, dict[str, float]]:
    """Per target: medians over ``repeats`` loads of ``streams`` answers sent at once (the
    targets alternating, load by load) of the aggregate tokens/s and the slowest first token."""
    clients = {t.name: t.client() for t in targets}
    rates: dict[str, list[float]] = {t.name: [] for t in targets}
    worst: dict[str, list[float]] = {t.name: [] for t in targets}
    for r in range(repeats):
        for t in targets:
            await asyncio.sleep(SETTLE_SECONDS)
            start = time.perf_counter()
            results = await asyncio.gather(*(stream(t, clients[t.name], PROMPTS[(r * streams + i) % 64], tokens)
                                             for i in range(streams)))
            seconds = time.perf_counter() - start
            rates[t.name].append(sum(x[1] for x in results) / seconds)
            worst[t.name].append(max(x[0] for x in results))
    for client in clients.values():
        await client.close()
    med = statistics.median
    return {name: {"tps": med(rates[name]), "worst_first": med(worst[name])} for name in rates}
