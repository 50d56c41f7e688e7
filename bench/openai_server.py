"""The OpenAI API stack against evaluate() in-process, on the same model, in the same run.

    python bench/openai_server.py [--tokens=64] [--runs=5] [--ttft_runs=40] [--requests=600]

Prints one table:
- time to first token (median of ``ttft_runs`` short answers: single requests swing by
  +/-10 ms on 2 cores, so it takes many) and tokens/s (median of ``runs`` answers of
  ``tokens`` tokens) of a greedy streamed answer through the whole stack (openai SDK ->
  worker -> IPC -> engine -> back) against evaluate() called in this process, interleaved
  run by run so drift hits both alike;
- requests/s of GET /v1/models with 1 and with 2 workers (2 client processes, 8
  connections each: one Python client process would be the bottleneck);
- RSS and USS (memory unique to the process) of each worker, and of the engine process.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

from tests.server import RemoteServer  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper and a storm."
SETTLE_SECONDS = 1.0
TTFT_TOKENS = 8


def _stack(client, model: str, tokens: int) -> tuple[float, float]:
    """(time to first token, tokens/s) of one streamed answer through the API."""
    start = time.perf_counter()
    first, count = None, 0
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=tokens,
        temperature=0, stream=True, stream_options={"include_usage": True},
        extra_body={"min_new_tokens": tokens, "repetition_penalty": 1.0},
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        if chunk.usage:
            count = chunk.usage.completion_tokens
    return first or 0.0, count / (time.perf_counter() - start)


def _in_process(evaluator, tokens: int) -> tuple[float, float]:
    from src.params import EvalParams

    params = EvalParams(instruction=PROMPT, temperature=0, repetition_penalty=1.0,
                        max_new_tokens=tokens, min_new_tokens=tokens)
    start = time.perf_counter()
    first, count = None, 0
    for chunk in evaluator.evaluate(params):
        if first is None and chunk.delta:
            first = time.perf_counter() - start
        count = chunk.completion_tokens
    return first or 0.0, count / (time.perf_counter() - start)


def _get_models(url: str, requests: int, concurrency: int) -> float:
    """One client process: ``requests`` GETs over ``concurrency`` connections; seconds taken."""
    import httpx

    async def run() -> float:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await client.get("/v1/models")
            left = iter(range(requests))

            async def worker() -> None:
                for _ in left:
                    (await client.get("/v1/models")).raise_for_status()

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - start

    return asyncio.run(run())


def _models_rps(url: str, requests: int, clients: int = 2, concurrency: int = 8) -> float:
    """Requests/s of GET /v1/models from ``clients`` client processes (one would be the limit)."""
    import multiprocessing

    share = requests // clients
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        seconds = pool.starmap(_get_models, [(url, share, concurrency)] * clients)
    return share * clients / max(seconds)


def _memory(server: RemoteServer) -> tuple[list[tuple[float, float]], float]:
    import psutil

    assert server.proc is not None
    workers = []
    for pid in server.worker_pids():
        info = psutil.Process(pid).memory_full_info()
        workers.append((info.rss / 2**20, info.uss / 2**20))
    engine = psutil.Process(server.proc.pid).memory_info().rss / 2**20
    return workers, engine


def _interleaved(stack_run, local_run, runs: int) -> tuple[list[tuple[float, float]], ...]:
    stack, local = [], []
    for _ in range(runs):
        # Pause between the two sides: torch's OpenMP threads keep spinning for a while
        # after a generation and would slow whichever side runs next.
        time.sleep(SETTLE_SECONDS)
        stack.append(stack_run())
        time.sleep(SETTLE_SECONDS)
        local.append(local_run())
    return stack, local


def main(tokens: int = 64, runs: int = 5, ttft_runs: int = 40, requests: int = 600) -> None:
    from src.app import build_evaluator
    from src.settings import build_settings

    med = statistics.median
    with tempfile.TemporaryDirectory() as tmp:
        with RemoteServer(Path(tmp) / "one", "--openai_workers=1") as one:
            rps_one = _models_rps(one.url, requests)
        with RemoteServer(Path(tmp) / "two", "--openai_workers=2") as two:
            rps_two = _models_rps(two.url, requests)
            client, model = two.client(), two.model()
            evaluator = build_evaluator(build_settings({"llm_backend": "transformers"}))  # as the servers run
            _stack(client, model, 4)  # warm-up both sides
            _in_process(evaluator, 4)
            stack, local = _interleaved(lambda: _stack(client, model, tokens),
                                        lambda: _in_process(evaluator, tokens), runs)
            stack_first, local_first = _interleaved(lambda: _stack(client, model, TTFT_TOKENS),
                                                    lambda: _in_process(evaluator, TTFT_TOKENS), ttft_runs)
            workers, engine_rss = _memory(two)
            evaluator.registry.shutdown()

    s_ttft, s_tps = med(t for t, _ in stack_first), med(r for _, r in stack)
    l_ttft, l_tps = med(t for t, _ in local_first), med(r for _, r in local)
    print(f"time to first token: median of {ttft_runs} interleaved {TTFT_TOKENS}-token answers; "
          f"tokens/s: median of {runs} interleaved {tokens}-token answers (greedy);\n"
          f"GET /v1/models x{requests} from 2 client processes, 8 connections each\n")
    print("| measure | evaluate() in-process (baseline) | through the API | ratio / overhead |")
    print("|---|---|---|---|")
    print(f"| time to first token | {l_ttft * 1000:.1f} ms | {s_ttft * 1000:.1f} ms | "
          f"{(s_ttft - l_ttft) * 1000:+.1f} ms |")
    print(f"| tokens/s | {l_tps:.1f} | {s_tps:.1f} | {s_tps / l_tps:.3f}x |")
    print(f"| GET /v1/models, 1 worker | | {rps_one:.0f} req/s | |")
    print(f"| GET /v1/models, 2 workers | | {rps_two:.0f} req/s | {rps_two / rps_one:.2f}x |")
    for i, (rss, uss) in enumerate(workers):
        print(f"| worker {i + 1} memory | | RSS {rss:.0f} MiB, USS {uss:.0f} MiB | |")
    print(f"| engine process RSS | | {engine_rss:.0f} MiB | |")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
