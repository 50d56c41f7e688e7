"""Prometheus metrics, counted where the work happens: in the engine process.

The OpenAI API runs as N worker processes and the Gradio UI in the engine process; both
reach ``Evaluator.evaluate``. So the one registry lives in the engine process: an
:class:`EngineMetrics` is made at start-up (src/app.py) and handed, as the observer, to
the :class:`~src.evaluate.Evaluator` (every answer passes through
:meth:`EngineMetrics.observe_answer`: token counts, time to first token, end-to-end
latency, finish reasons) and to the document ingestor (every ingestion report goes to
:meth:`EngineMetrics.observe_ingest`: documents ingested); the workers report each HTTP
response over the IPC (``observe_http``), and ``/metrics`` on any worker shows the
engine's registry. Nothing is per worker, so nothing is off by a factor of N and nothing
is lost when a worker is replaced. Gauges (running and queued sequences, KV-cache use)
are read from the engine's ``stats()`` at each scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

if TYPE_CHECKING:
    from src.docqa.ingest import IngestReport
    from src.evaluate import EvalChunk, Evaluator

Answer = Generator["EvalChunk", None, None]


class AnswerObserver(Protocol):
    """What the Evaluator calls with each answer's stream (given at its construction)."""

    def observe_answer(self, chunks: Answer) -> Answer:
        """``chunks``, passed through unchanged while they are watched; closing the result
        closes ``chunks`` (which cancels the generation)."""
        ...


class IngestObserver(Protocol):
    """What the document ingestor calls with the report of each ingestion."""

    def observe_ingest(self, report: IngestReport) -> None: ...


PREFIX = "h2ogpt"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)


class EngineMetrics:
    """The registry and its metrics, one per engine process: the observer of its answers
    and ingestions (an :class:`AnswerObserver` and an :class:`IngestObserver`)."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created samples: they double the text for nothing
        r = self.registry = CollectorRegistry()
        self.http_requests = Counter(
            f"{PREFIX}_http_requests", "HTTP responses of the OpenAI API, by route template "
            "and status (all workers).", ["route", "status"], registry=r)
        self.requests = Counter(
            f"{PREFIX}_requests", "Answers that ended, by finish reason (stop, length, abort, "
            "error); the OpenAI API and the Gradio UI alike.", ["finish_reason"], registry=r)
        self.prompt_tokens = Counter(
            f"{PREFIX}_prompt_tokens", "Prompt tokens read.", registry=r)
        self.generation_tokens = Counter(
            f"{PREFIX}_generation_tokens", "Tokens generated.", registry=r)
        self.ttft = Histogram(
            f"{PREFIX}_time_to_first_token_seconds", "Seconds from the request to its first "
            "generated token (to the whole answer when it does not stream).",
            buckets=LATENCY_BUCKETS, registry=r)
        self.e2e = Histogram(
            f"{PREFIX}_e2e_request_latency_seconds", "Seconds from the request to its last "
            "chunk.", buckets=LATENCY_BUCKETS, registry=r)
        self.documents = Counter(
            f"{PREFIX}_documents_ingested", "Documents (sources) ingested, by outcome "
            "(added, updated, skipped, failed).", ["status"], registry=r)
        self.running = Gauge(f"{PREFIX}_num_requests_running", "Sequences being generated.", registry=r)
        self.waiting = Gauge(f"{PREFIX}_num_requests_waiting", "Requests queued in the engine.", registry=r)
        self.kv_used = Gauge(f"{PREFIX}_kv_cache_used_tokens", "KV-cache tokens in use.", registry=r)
        self.kv_capacity = Gauge(f"{PREFIX}_kv_cache_capacity_tokens",
                                 "KV-cache capacity in tokens (0: not reported).", registry=r)
        self._lock = threading.Lock()

    # --- observations ----------------------------------------------------------------------
    def observe_http(self, route: str, status: int) -> None:
        self.http_requests.labels(route=route, status=str(status)).inc()

    def observe_answer(self, chunks: Answer) -> Answer:
        """Pass ``chunks`` (EvalChunks) through, counting the answer they make."""
        start = time.monotonic()
        first_token = False
        last: EvalChunk | None = None
        reason = "abort"  # closed before its last chunk: the client left or was cancelled
        try:
            for chunk in chunks:
                if not first_token and (chunk.delta or chunk.completion_tokens):
                    first_token = True
                    self.ttft.observe(time.monotonic() - start)
                last = chunk
                yield chunk
                if chunk.finish_reason is not None:
                    reason = str(chunk.finish_reason)
        except Exception:
            reason = "error"
            raise
        finally:
            chunks.close()  # now, not when collected: closing the answer cancels its generation
            if last is not None:
                self.prompt_tokens.inc(max(int(last.prompt_tokens), 0))
                self.generation_tokens.inc(max(int(last.completion_tokens), 0))
            self.e2e.observe(time.monotonic() - start)
            self.requests.labels(finish_reason=reason).inc()

    def observe_ingest(self, report: IngestReport) -> None:
        for item in report.files:
            self.documents.labels(status=str(item.status)).inc()

    # --- exposition -------------------------------------------------------------------------
    def exposition(self, stats: dict[str, int]) -> bytes:
        """The Prometheus text format, gauges set from the engine's ``stats()``."""
        with self._lock:
            self.running.set(stats.get("running", 0))
            self.waiting.set(stats.get("queued", 0))
            self.kv_used.set(stats.get("kv_cache_used_tokens", 0))
            self.kv_capacity.set(stats.get("kv_cache_capacity_tokens", 0))
            return bytes(generate_latest(self.registry))


def metrics_of(evaluator: Evaluator) -> EngineMetrics | None:
    """The metrics that observe ``evaluator``'s answers, if any."""
    found = evaluator.observer
    return found if isinstance(found, EngineMetrics) else None
