"""Generation speed: evaluate() against raw `model.generate` on the same model and threads.

    python bench/generation.py [--tokens=128] [--runs=5]

Prints one table: tokens/s of a greedy completion of --tokens tokens, time to first
token, and model load time cold (GGUF conversion into a fresh cache) and warm (from the
cache), plus the warm start of the whole app (process start to first answer). Ratios
compare against the raw baseline measured in the same run, since machines are noisy.
"""

from __future__ import annotations

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

PROMPT = "Write a long story about a lighthouse keeper and a storm."
SETTLE_SECONDS = 1.0  # torch's OpenMP threads spin briefly after a generation; let them idle


def _settle() -> None:
    time.sleep(SETTLE_SECONDS)


def _raw_generate(loaded, ids, tokens: int) -> float:
    import torch

    input_ids = torch.tensor([ids])
    start = time.perf_counter()
    loaded.model.generate(
        input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
        max_new_tokens=tokens, min_new_tokens=tokens, pad_token_id=loaded.eos_token_ids[0],
    )
    return time.perf_counter() - start


def _evaluate(evaluator, tokens: int) -> tuple[float, float, int]:
    from src.params import EvalParams

    params = EvalParams(
        instruction=PROMPT, temperature=0, repetition_penalty=1.0,
        max_new_tokens=tokens, min_new_tokens=tokens,
    )
    start = time.perf_counter()
    first = None
    count = 0
    for chunk in evaluator.evaluate(params):
        if first is None:
            first = time.perf_counter() - start
        count = chunk.completion_tokens
    return time.perf_counter() - start, first or 0.0, count


def _warm_app_start() -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "generate.py", "--cli=True", "--max_new_tokens=1"],
        input="hi\n", cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return time.perf_counter() - start


def main(tokens: int = 128, runs: int = 5) -> None:
    from src.app import build_evaluator
    from src.conversation import compose
    from src.engine.loader import load_model
    from src.engine.prompting import render_prompt
    from src.engine.types import Capabilities
    from src.params import EvalParams
    from src.settings import build_settings

    with tempfile.TemporaryDirectory() as cache:
        cold = load_model(build_settings({"model_cache_dir": cache})).load_seconds
        warm = load_model(build_settings({"model_cache_dir": cache})).load_seconds
    settings = build_settings({"llm_backend": "transformers"})  # the engine raw generate() is measured against
    evaluator = build_evaluator(settings)
    loaded = evaluator.registry.default.loaded
    ids = render_prompt(loaded.tokenizer, compose(EvalParams(instruction=PROMPT), None, Capabilities()))
    _raw_generate(loaded, ids, 8)  # warm-up
    _evaluate(evaluator, 8)
    raw_tps, eval_tps, raw_ttft, eval_ttft = [], [], [], []
    for _ in range(runs):  # interleaved so drift hits both sides alike
        _settle()
        raw_tps.append(tokens / _raw_generate(loaded, ids, tokens))
        _settle()
        raw_ttft.append(_raw_generate(loaded, ids, 1))
        _settle()
        total, first, count = _evaluate(evaluator, tokens)
        eval_tps.append(count / total)
        _settle()
        eval_ttft.append(_evaluate(evaluator, 1)[1])
    app_start = statistics.median(_warm_app_start() for _ in range(3))
    evaluator.registry.shutdown()

    med = statistics.median
    threads = settings.resolved_threads()
    print(f"model {settings.base_model}, {threads} torch threads, {tokens} greedy tokens, "
          f"median of {runs} runs\n")
    print("| measure | raw model.generate (baseline) | evaluate() | ratio / overhead |")
    print("|---|---|---|---|")
    print(f"| tokens/s | {med(raw_tps):.1f} | {med(eval_tps):.1f} | "
          f"{med(eval_tps) / med(raw_tps):.3f}x |")
    print(f"| time to first token | {med(raw_ttft) * 1000:.1f} ms | {med(eval_ttft) * 1000:.1f} ms | "
          f"{(med(eval_ttft) - med(raw_ttft)) * 1000:+.1f} ms |")
    print(f"| model load, cold (GGUF conversion) | | {cold:.1f} s | |")
    print(f"| model load, warm (safetensors cache) | | {warm:.2f} s | {cold / warm:.0f}x faster |")
    print(f"| warm app start to first answer (CLI) | | {app_start:.1f} s | |")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
