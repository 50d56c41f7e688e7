"""Unit tests of the operations pieces: engine metrics, the shared rate limiter, keys' limits."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from src.apikeys import ApiKeys
from src.ipc.ops import RateLimits
from src.metrics import instrument, metrics_of


@dataclass
class Chunk:
    delta: str
    completion_tokens: int = 0
    prompt_tokens: int = 7
    finish_reason: str | None = None


@dataclass
class Report:
    files: list[Any] = field(default_factory=list)


@dataclass
class FileReport:
    status: str


class FakeIngestor:
    def ingest_files(self, store: Any, files: Any) -> Report:
        return Report([FileReport("added"), FileReport("skipped")])

    def ingest_text(self, store: Any, text: str, source: str) -> Report:
        return Report([FileReport("added")])


class FakeDocs:
    def __init__(self) -> None:
        self.ingestor = FakeIngestor()


class FakeEvaluator:
    def __init__(self, fail: bool = False) -> None:
        self.docs = FakeDocs()
        self.fail = fail

    def evaluate(self, params: Any, cancel: Any = None, user: Any = None):
        yield Chunk("")
        yield Chunk("Hel", 1)
        if self.fail:
            raise RuntimeError("boom")
        yield Chunk("lo", 2)
        yield Chunk("", 2, finish_reason="stop")


def sample(evaluator: Any, name: str, **labels: str) -> float:
    metrics = metrics_of(evaluator)
    assert metrics is not None
    value = metrics.registry.get_sample_value(name, labels)
    return float(value or 0.0)


def test_instrument_counts_answers_tokens_and_latencies_once():
    evaluator = instrument(instrument(FakeEvaluator()))  # a second instrument() is a no-op
    assert list(evaluator.evaluate(None))[-1].finish_reason == "stop"
    assert sample(evaluator, "h2ogpt_requests_total", finish_reason="stop") == 1
    assert sample(evaluator, "h2ogpt_prompt_tokens_total") == 7
    assert sample(evaluator, "h2ogpt_generation_tokens_total") == 2
    assert sample(evaluator, "h2ogpt_time_to_first_token_seconds_count") == 1
    assert sample(evaluator, "h2ogpt_e2e_request_latency_seconds_count") == 1


def test_an_abandoned_answer_is_an_abort_and_a_failed_one_an_error():
    evaluator = instrument(FakeEvaluator())
    stream = evaluator.evaluate(None)
    next(stream), next(stream)
    stream.close()
    assert sample(evaluator, "h2ogpt_requests_total", finish_reason="abort") == 1
    assert sample(evaluator, "h2ogpt_generation_tokens_total") == 1  # the tokens made before
    failing = instrument(FakeEvaluator(fail=True))
    with pytest.raises(RuntimeError):
        list(failing.evaluate(None))
    assert sample(failing, "h2ogpt_requests_total", finish_reason="error") == 1


def test_ingested_documents_are_counted_by_outcome():
    evaluator = instrument(FakeEvaluator())
    evaluator.docs.ingestor.ingest_files(None, [])
    evaluator.docs.ingestor.ingest_text(None, "text", "source")
    assert sample(evaluator, "h2ogpt_documents_ingested_total", status="added") == 2
    assert sample(evaluator, "h2ogpt_documents_ingested_total", status="skipped") == 1


def test_gauges_come_from_the_engine_stats():
    evaluator = instrument(FakeEvaluator())
    metrics = metrics_of(evaluator)
    assert metrics is not None
    text = metrics.exposition({"running": 3, "queued": 2, "kv_cache_used_tokens": 100,
                               "kv_cache_capacity_tokens": 4096}).decode()
    for line in ("h2ogpt_num_requests_running 3.0", "h2ogpt_num_requests_waiting 2.0",
                 "h2ogpt_kv_cache_used_tokens 100.0", "h2ogpt_kv_cache_capacity_tokens 4096.0"):
        assert line in text.splitlines()


def test_rate_limits_count_hits_per_identity_and_every_window():
    limits = RateLimits()
    assert [limits.hit("a", "2/minute")["allowed"] for _ in range(3)] == [True, True, False]
    assert limits.hit("b", "2/minute")["allowed"]  # another identity has its own window
    refused = limits.hit("a", "2/minute")
    assert refused["limit"] == 2 and refused["remaining"] == 0 and refused["reset"] > time.time()
    both = [limits.hit("c", "1/second;2/minute")["allowed"] for _ in range(2)]
    assert both == [True, False]  # the per-second window is full; the minute's is not


def test_keys_file_entries_may_carry_a_rate_limit(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(["plain", {"key": "vip", "rate_limit": "100/minute"},
                                {"key": "odd", "rate_limit": "lots"}]))
    keys = ApiKeys(str(path))
    assert keys.check("plain") and keys.check("vip") and keys.check("odd")
    assert keys.rate_limit("vip") == "100/minute"
    assert keys.rate_limit("plain") is None and keys.rate_limit("odd") is None  # bad: ignored
