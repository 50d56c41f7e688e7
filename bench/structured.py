"""Structured output: the cost of constrained decoding, and how often the test set runs long.

    python bench/structured.py [--tokens=64] [--runs=3] [--streams=8]

In one process, on the default model's transformers backend (the batching engine):

- decode speed with a JSON-schema constraint against unconstrained generation of the same
  length: both generate exactly ``tokens`` tokens (unconstrained: ``min_new_tokens`` =
  ``max_new_tokens``; constrained: a schema whose only string has a ``minLength`` longer
  than ``tokens`` tokens can fill), same prompt, same run, interleaved run by run. Alone
  (one stream; median of ``runs``) and at ``streams`` concurrent streams (aggregate
  tokens/s; median of ``runs``). The ratio constrained / unconstrained is printed;
- schema compile time: for each schema of the test set (tests/structured_cases.py) and each
  tool's call grammar, the time from the constraint to the first mask (llguidance compiles
  lazily, so the first mask is included), with an empty cache; p50 and max;
- the test set itself at ``--tokens`` max tokens, greedy: how many answers stop (and
  validate against their schema) and how many hit ``length``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

PROMPT = "Write a long story about a lighthouse keeper and the sea."
LONG_SCHEMA = {"type": "object", "properties": {"story": {"type": "string", "minLength": 2000}},
               "required": ["story"], "additionalProperties": False}


def generate(engine, requests):
    """Submit all at once; (seconds until all are done, total completion tokens, finishes)."""
    start = time.perf_counter()
    handles = [engine.submit(r) for r in requests]
    tokens, finishes = 0, []
    for handle in handles:
        last = None
        for event in handle:
            last = event
        tokens += last.completion_tokens
        finishes.append(last.finish_reason)
    return time.perf_counter() - start, tokens, finishes


def speed(engine, tokens: int, runs: int, streams: int) -> dict[str, float]:
    from src.engine.types import GenerationRequest, OutputConstraint, SamplingOptions

    messages = ({"role": "user", "content": PROMPT},)
    plain = GenerationRequest(messages=messages, options=SamplingOptions(max_new_tokens=tokens, min_new_tokens=tokens))
    constrained = GenerationRequest(messages=messages, options=SamplingOptions(max_new_tokens=tokens),
                                    constraint=OutputConstraint("json_schema", LONG_SCHEMA))
    generate(engine, [constrained])  # warm up: the tokenizer's grammar view, the schema
    out: dict[str, float] = {}
    for n in (1, streams):
        rates: dict[str, list[float]] = {"unconstrained": [], "constrained": []}
        for _ in range(runs):
            for name, request in (("unconstrained", plain), ("constrained", constrained)):
                seconds, generated, finishes = generate(engine, [request] * n)
                assert generated == n * tokens, (name, generated, finishes)
                rates[name].append(generated / seconds)
        for name, values in rates.items():
            out[f"{name}_tps_{n}"] = statistics.median(values)
        out[f"ratio_{n}"] = out[f"constrained_tps_{n}"] / out[f"unconstrained_tps_{n}"]
    return out


def compile_times(engine) -> dict[str, float]:
    import torch

    from src import tools
    from src.engine.constraints import GrammarCompiler
    from src.engine.types import OutputConstraint
    from tests.structured_cases import SCHEMAS, TOOLS

    compiler = GrammarCompiler(engine.loaded.tokenizer, engine.vocab_size, engine.loaded.eos_token_ids)
    compiler._ll_tokenizer = engine.grammars.ll_tokenizer  # the per-model set-up is not per schema
    constraints = [OutputConstraint("json_schema", s) for _, s in SCHEMAS]
    constraints += [OutputConstraint("grammar", tools.call_grammar(tools.functions([t]), True)) for _, t in TOOLS]
    logits = torch.zeros(engine.vocab_size)
    compile_s, first_mask_s, cached_s = [], [], []
    for constraint in constraints:
        start = time.perf_counter()
        processor = compiler.processor(constraint)
        compiled = time.perf_counter()
        processor([], logits)
        first_mask_s.append(time.perf_counter() - compiled)
        compile_s.append(compiled - start)
        start = time.perf_counter()
        compiler.processor(constraint)
        cached_s.append(time.perf_counter() - start)
    ms = {name: 1000 * statistics.median(values)
          for name, values in (("compile_ms_p50", compile_s), ("first_mask_ms_p50", first_mask_s),
                               ("cached_ms_p50", cached_s))}
    return {**ms, "compile_ms_max": 1000 * max(compile_s), "constraints": len(compile_s)}


def test_set(evaluator, engine, tokens: int) -> dict[str, float]:
    import jsonschema

    from src import tools
    from src.conversation import json_instruction
    from src.engine.types import GenerationRequest, OutputConstraint, SamplingOptions
    from src.params import EvalParams
    from tests.structured_cases import SCHEMAS, TOOLS

    requests, checks = [], []
    for prompt, schema in SCHEMAS:
        requests.append(GenerationRequest(
            messages=({"role": "system", "content": json_instruction(schema)}, {"role": "user", "content": prompt}),
            options=SamplingOptions(max_new_tokens=tokens), constraint=OutputConstraint("json_schema", schema)))
        checks.append(lambda text, s=schema: jsonschema.validate(json.loads(text), s))
    for prompt, tool in TOOLS:
        params = EvalParams(instruction=prompt, tools=[tool], tool_choice="required", max_new_tokens=tokens,
                            parallel_tool_calls=False, temperature=0).with_defaults(evaluator.settings)
        requests.append(evaluator.checked_request(engine, params))
        schema = tool["function"]["parameters"]
        checks.append(lambda text, s=schema: jsonschema.validate(
            json.loads(tools.parse_tool_calls(text)[0].arguments), s))
    counts: dict[str, float] = {"answers": len(requests), "stop": 0, "valid": 0, "length": 0}
    handles = [engine.submit(r) for r in requests]
    for handle, check in zip(handles, checks, strict=True):
        text, finish = "", None
        for event in handle:
            text += event.delta
            finish = event.finish_reason
        counts["stop" if finish == "stop" else "length"] += 1
        if finish == "stop":
            check(text)  # raises on an invalid answer
            counts["valid"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--no-speed", action="store_true", help="only compile times and the test set")
    args = parser.parse_args()
    from src.app import build_evaluator
    from src.settings import build_settings

    evaluator = build_evaluator(build_settings({"llm_backend": "transformers"}))  # llguidance in the batch
    engine = evaluator.registry.default
    try:
        result: dict[str, float] = {"tokens": args.tokens, "streams": args.streams}
        parts = [lambda: compile_times(engine), lambda: test_set(evaluator, engine, args.tokens)]
        if not args.no_speed:
            parts.append(lambda: speed(engine, args.tokens, args.runs, args.streams))
        for part in parts:
            found = part()
            print(json.dumps(found), flush=True)  # each part as it is measured
            result.update(found)
    finally:
        evaluator.registry.shutdown()
    print(json.dumps(result, indent=1))
    if args.no_speed:
        return
    print(f"alone: {result['constrained_tps_1']:.1f} vs {result['unconstrained_tps_1']:.1f} tokens/s "
          f"({result['ratio_1']:.2f}x); {args.streams} streams: {result[f'constrained_tps_{args.streams}']:.1f} vs "
          f"{result[f'unconstrained_tps_{args.streams}']:.1f} ({result[f'ratio_{args.streams}']:.2f}x); compile "
          f"p50 {result['compile_ms_p50']:.1f} ms; test set: {result['stop']}/{result['answers']} stop, all valid, "
          f"{result['length']} hit length")


if __name__ == "__main__":
    main()
