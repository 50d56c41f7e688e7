"""Unit tests of the operations pieces: engine metrics, the shared rate limiter, keys' limits."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from src.apikeys import ApiKeys
from src.engine.registry import ModelRegistry
from src.engine.types import Capabilities, GenerationRequest, TokenEvent
from src.evaluate import Evaluator
from src.ipc.ops import RateLimits
from src.metrics import EngineMetrics, metrics_of
from src.params import EvalParams
from src.settings import build_settings


class ScriptedHandle:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.cancelled = False

    def __iter__(self) -> Iterator[TokenEvent]:
        yield TokenEvent("", 7, 0)
        yield TokenEvent("Hel", 7, 1)
        if self.fail:
            raise RuntimeError("boom")
        yield TokenEvent("lo", 7, 2)
        yield TokenEvent("", 7, 2, finish_reason="stop")

    def cancel(self) -> None:
        self.cancelled = True


class ScriptedBackend:
    """A backend whose every answer is "Hello" in two tokens, after a 7-token prompt."""

    name = "scripted"
    capabilities = Capabilities()
    context_window = 2048

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.handles: list[ScriptedHandle] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def submit(self, request: GenerationRequest, cancel: threading.Event | None = None) -> ScriptedHandle:
        self.handles.append(ScriptedHandle(self.fail))
        return self.handles[-1]


def observed(fail: bool = False) -> tuple[Evaluator, ScriptedBackend]:
    backend = ScriptedBackend(fail)
    settings = build_settings({"langchain_mode": "LLM"})
    return Evaluator(settings, ModelRegistry([backend]), observer=EngineMetrics()), backend


def sample(evaluator: Evaluator, name: str, **labels: str) -> float:
    metrics = metrics_of(evaluator)
    assert metrics is not None
    value = metrics.registry.get_sample_value(name, labels)
    return float(value or 0.0)


ASK = EvalParams(instruction="Say hello.", stream_output=True)


def test_the_observer_counts_answers_tokens_and_latencies():
    evaluator, _ = observed()
    assert list(evaluator.evaluate(ASK))[-1].finish_reason == "stop"
    assert sample(evaluator, "h2ogpt_requests_total", finish_reason="stop") == 1
    assert sample(evaluator, "h2ogpt_prompt_tokens_total") == 7
    assert sample(evaluator, "h2ogpt_generation_tokens_total") == 2
    assert sample(evaluator, "h2ogpt_time_to_first_token_seconds_count") == 1
    assert sample(evaluator, "h2ogpt_e2e_request_latency_seconds_count") == 1


def test_an_abandoned_answer_is_an_abort_that_cancels_and_a_failed_one_an_error():
    evaluator, backend = observed()
    stream = evaluator.evaluate(ASK)
    next(stream), next(stream)
    stream.close()
    assert backend.handles[0].cancelled  # closing the observed answer cancels the generation
    assert sample(evaluator, "h2ogpt_requests_total", finish_reason="abort") == 1
    assert sample(evaluator, "h2ogpt_generation_tokens_total") == 1  # the tokens made before
    failing, _ = observed(fail=True)
    with pytest.raises(RuntimeError):
        list(failing.evaluate(ASK))
    assert sample(failing, "h2ogpt_requests_total", finish_reason="error") == 1


def test_an_evaluator_without_an_observer_counts_nothing_and_answers_the_same():
    backend = ScriptedBackend()
    bare = Evaluator(build_settings({"langchain_mode": "LLM"}), ModelRegistry([backend]))
    evaluator, _ = observed()
    assert metrics_of(bare) is None
    assert [c.response for c in bare.evaluate(ASK)] == [c.response for c in evaluator.evaluate(ASK)]


def test_gauges_come_from_the_engine_stats():
    metrics = EngineMetrics()
    text = metrics.exposition({"running": 3, "queued": 2, "kv_cache_used_tokens": 100,
                               "kv_cache_capacity_tokens": 4096}).decode()
    for line in ("h2ogpt_num_requests_running 3.0", "h2ogpt_num_requests_waiting 2.0",
                 "h2ogpt_kv_cache_used_tokens 100.0", "h2ogpt_kv_cache_capacity_tokens 4096.0"):
        assert line in text.splitlines()


def test_rate_limits_count_hits_per_identity_and_every_window():
    limits = RateLimits()
    assert [limits.hit("a", "2/minute").allowed for _ in range(3)] == [True, True, False]
    assert limits.hit("b", "2/minute").allowed  # another identity has its own window
    refused = limits.hit("a", "2/minute")
    assert refused.limit == 2 and refused.remaining == 0 and refused.reset > time.time()
    both = [limits.hit("c", "1/second;2/minute").allowed for _ in range(2)]
    assert both == [True, False]  # the per-second window is full; the minute's is not


def test_keys_file_entries_may_carry_a_rate_limit(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(["plain", {"key": "vip", "rate_limit": "100/minute"},
                                {"key": "odd", "rate_limit": "lots"}]))
    keys = ApiKeys(str(path))
    assert keys.check("plain") and keys.check("vip") and keys.check("odd")
    assert keys.rate_limit("vip") == "100/minute"
    assert keys.rate_limit("plain") is None and keys.rate_limit("odd") is None  # bad: ignored
