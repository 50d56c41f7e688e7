"""Weights precision: float32 (the default) against --load_8bit (int8) and bfloat16, same run.

    python bench/quantization.py [--prompts=20] [--tokens=64] [--runs=3]

Loads the model three times in this process (float32, int8 Linear layers, bfloat16 on a
CPU with native bf16), each behind its own backend, and prints one table:

- decode tokens/s of one greedy stream (median of ``runs`` answers of ``tokens`` tokens,
  the three precisions interleaved run by run so drift hits all alike), as a ratio to
  float32;
- agreement with float32 on ``prompts`` greedy answers: the share of answers with the very
  same text, and the mean share of tokens before the first difference.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

PROMPTS = [
    "What is the capital of France?", "Write a haiku about autumn.", "Explain photosynthesis briefly.",
    "Give three tips for learning to code.", "What is 12 times 7?", "Describe a cat to a child.",
    "Why is the sky blue?", "Name five fruits.", "Write a short poem about the sea.",
    "What does a lighthouse do?", "Summarize the story of Cinderella.", "How do airplanes fly?",
    "What is a prime number?", "Give a recipe for pancakes.", "What is the tallest mountain?",
    "Translate 'good morning' into Spanish.", "Write a limerick about a dog.",
    "What causes rain?", "List the planets of the solar system.", "What is machine learning?",
]
SETTLE_SECONDS = 1.0


def _backend(**flags):
    from src.engine.registry import build_registry
    from src.settings import build_settings

    return build_registry(build_settings({"llm_backend": "transformers", **flags})).default


def _answer(backend, prompt: str, tokens: int, exact: bool = False):
    from src.engine.types import GenerationRequest, SamplingOptions

    request = GenerationRequest(messages=({"role": "user", "content": prompt},),
                                options=SamplingOptions(max_new_tokens=tokens,
                                                        min_new_tokens=tokens if exact else 0))
    start = time.perf_counter()
    first = None
    text, count = "", 0
    for event in backend.submit(request):
        if first is None and event.delta:
            first = time.perf_counter()
        text += event.delta
        count = event.completion_tokens
    decode_seconds = time.perf_counter() - (first or start)
    return text, (count - 1) / decode_seconds if count > 1 else 0.0


def _prefix_share(a: list[int], b: list[int]) -> float:
    same = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        same += 1
    return same / max(len(a), len(b), 1)


def main(prompts: int = 20, tokens: int = 64, runs: int = 3) -> None:
    import torch

    kinds = {"float32": {}, "int8 (--load_8bit)": {"load_8bit": True}}
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        kinds["bfloat16"] = {"torch_dtype": "bfloat16"}
    backends = {name: _backend(**flags) for name, flags in kinds.items()}
    speed: dict[str, list[float]] = {name: [] for name in backends}
    for backend in backends.values():
        _answer(backend, PROMPTS[0], 4)  # warm-up
    for _ in range(runs):
        for name, backend in backends.items():
            time.sleep(SETTLE_SECONDS)
            speed[name].append(_answer(backend, "Write a long story about a lighthouse.", tokens, exact=True)[1])
    texts = {name: [_answer(b, p, tokens)[0] for p in PROMPTS[:prompts]] for name, b in backends.items()}
    base = backends["float32"]
    base_ids = [base.tokenize(t) for t in texts["float32"]]
    print(f"one greedy stream, {tokens}-token answers; decode tokens/s: median of {runs}, interleaved; "
          f"agreement with float32 over {prompts} prompts\n")
    print("| weights | decode tokens/s | vs float32 | same answer as float32 | tokens before the first difference |")
    print("|---|---|---|---|---|")
    ref = statistics.median(speed["float32"])
    for name in backends:
        tps = statistics.median(speed[name])
        same = sum(a == b for a, b in zip(texts[name], texts["float32"], strict=True))
        prefix = statistics.mean(_prefix_share(base.tokenize(t), ids)
                                 for t, ids in zip(texts[name], base_ids, strict=True))
        print(f"| {name} | {tps:.1f} | {tps / ref:.2f}x | {same}/{prompts} | {prefix:.0%} |")
    for backend in backends.values():
        backend.shutdown()


if __name__ == "__main__":
    import fire

    fire.Fire(main)
