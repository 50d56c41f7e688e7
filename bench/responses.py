"""The Responses and Messages streams against chat completions, on one server, in one run.

    python bench/responses.py [--backend=llamacpp] [--tokens=64] [--runs=21] [--ttft_runs=60]

Both APIs are translators over the chat completions layer, so their cost is the translation
and the event framing. For each of the three APIs, interleaved run by run so that drift
hits all alike, with the official SDKs as clients (openai for chat and Responses,
anthropic for Messages) on one generate.py (1 worker; ``backend``: llamacpp, the default
path, or transformers):
- time to first token: the median of ``ttft_runs`` greedy 8-token answers (first text
  delta seen by the SDK; single requests swing by +/-10 ms on 2 cores, so it takes many),
  and the difference against chat as the median of the paired differences of each round
  (chat, then the others, back to back: drift over the run cancels out of each pair);
- tokens/s: the median of ``runs`` greedy ``tokens``-token answers (usage tokens over
  the whole stream's time).
Prints one table with the differences against chat completions. The Responses streams
are ``store=False`` here (storing is one insert after the last token; a stored run is
measured too, tokens/s only).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

from tests.server import RemoteServer  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper and a storm."
TTFT_TOKENS = 8
SETTLE_SECONDS = 0.5
EXTRA = {"repetition_penalty": 1.0}

Run = Callable[[int], tuple[float, float]]


def chat(client, model: str) -> Run:
    def run(tokens: int) -> tuple[float, float]:
        start, first, count = time.perf_counter(), None, 0
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=tokens, temperature=0,
            stream=True, stream_options={"include_usage": True}, extra_body={"min_new_tokens": tokens, **EXTRA})
        for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - start
            if chunk.usage:
                count = chunk.usage.completion_tokens
        return first or 0.0, count / (time.perf_counter() - start)
    return run


def responses(client, model: str, store: bool = False) -> Run:
    def run(tokens: int) -> tuple[float, float]:
        start, first, count = time.perf_counter(), None, 0
        stream = client.responses.create(model=model, input=PROMPT, max_output_tokens=tokens, temperature=0,
                                         stream=True, store=store, extra_body={"min_new_tokens": tokens, **EXTRA})
        for event in stream:
            if first is None and event.type == "response.output_text.delta":
                first = time.perf_counter() - start
            if event.type in ("response.completed", "response.incomplete"):
                count = event.response.usage.output_tokens
        return first or 0.0, count / (time.perf_counter() - start)
    return run


def messages(claude, model: str) -> Run:
    def run(tokens: int) -> tuple[float, float]:
        start, first, count = time.perf_counter(), None, 0
        stream = claude.messages.create(model=model, max_tokens=tokens, stream=True,
                                        messages=[{"role": "user", "content": PROMPT}],
                                        extra_body={"temperature": 0, "min_new_tokens": tokens, **EXTRA})
        for event in stream:
            if first is None and event.type == "content_block_delta":
                first = time.perf_counter() - start
            if event.type == "message_delta":
                count = event.usage.output_tokens
        return first or 0.0, count / (time.perf_counter() - start)
    return run


def interleaved(runs: dict[str, Run], tokens: int, times: int) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(times):
        for name, run in runs.items():
            time.sleep(SETTLE_SECONDS)  # torch's threads spin a while after a generation
            out[name].append(run(tokens))
    return out


def main(backend: str = "llamacpp", tokens: int = 64, runs: int = 21, ttft_runs: int = 60) -> None:
    import anthropic

    med = statistics.median
    with tempfile.TemporaryDirectory() as tmp, RemoteServer(Path(tmp), "--openai_workers=1",
                                                                f"--llm_backend={backend}") as server:
        client, model = server.client(), server.model()
        claude = anthropic.Anthropic(base_url=server.url, api_key="EMPTY", max_retries=0)
        apis = {"chat completions": chat(client, model), "responses": responses(client, model),
                "messages": messages(claude, model)}
        for run in apis.values():  # warm-up
            run(4)
        speed = interleaved({**apis, "responses (store)": responses(client, model, store=True)}, tokens, runs)
        first = interleaved(apis, TTFT_TOKENS, ttft_runs)
        flags = " ".join(server.flags)
    print(f"one generate.py ({flags}); time to first token: median of {ttft_runs} interleaved "
          f"{TTFT_TOKENS}-token answers; tokens/s: median of {runs} interleaved {tokens}-token answers (greedy)\n")
    base_tps = med(r for _, r in speed["chat completions"])
    print("| API | time to first token | vs chat | tokens/s | vs chat |")
    print("|---|---|---|---|---|")
    for name in speed:
        tps = med(r for _, r in speed[name])
        if name in first:
            ttft = med(t for t, _ in first[name])
            paired = med(t - b for (t, _), (b, _) in zip(first[name], first["chat completions"], strict=True))
            ttft_cells = f"{ttft * 1000:.1f} ms | {paired * 1000:+.1f} ms"
        else:
            ttft_cells = "- | -"
        print(f"| {name} | {ttft_cells} | {tps:.1f} | {tps / base_tps:.3f}x |")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
