"""Operations services in the engine process: tokenizer, metrics and the shared rate limiter.

Registered on the IPC server by :func:`register_ops_methods` (one line in
src/ipc/services.py). The API workers are N processes; whatever must be counted or
limited once for all of them lives here, in the one engine process:

- ``tokenize`` / ``detokenize``: the model's tokenizer, for /tokenize, /detokenize,
  /v1/internal/encode and the Gradio ``/count_tokens`` endpoint (one code path);
- ``chat_prompt`` and ``logits``: a chat's prompt text and the next token's probabilities
  (text-generation-webui's /v1/internal/chat-prompt and /v1/internal/logits);
- ``metrics``: the Prometheus text of the engine's registry (src/metrics.py), which the
  workers serve at /metrics; ``observe_http``: a worker reports one HTTP response;
- ``rate_hit``: one hit on a rate limit, counted across all workers (``limits``' moving
  window in this process's memory, or in --rate_limit_storage's store shared by instances).

Every access to engine internals goes through :class:`EngineAdapter` (marked below), so
that a change of the engine's interface touches one class.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from src.contract import (
    ChatPrompt,
    DetokenizeRequest,
    DetokenizeResult,
    Empty,
    HttpObservation,
    LogitsRequest,
    LogitsResult,
    Message,
    MetricsText,
    RateHit,
    RateVerdict,
    TokenizeRequest,
    TokenizeResult,
)
from src.conversation import backend_message, local_content
from src.engine.next_token import NextTokenSource, validate
from src.errors import InvalidParamsError, UnsupportedFeatureError
from src.ipc.server import IpcServer
from src.metrics import EngineMetrics, metrics_of

if TYPE_CHECKING:
    from src.evaluate import Evaluator

log = logging.getLogger(__name__)


# ---- ENGINE ADAPTER: the only place this module touches the engine ------------------------
class EngineAdapter:
    """The engine as the operations services need it: the default model's Backend for the
    tokenizer, and every backend's ``stats()`` summed for the gauges."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.registry = evaluator.registry
        self.settings = evaluator.settings

    def tokenize(self, text: str, add_special_tokens: bool = True, model: str | None = None) -> list[int]:
        return [int(i) for i in self.registry.get(model).tokenize(text, add_special_tokens=add_special_tokens)]

    def detokenize(self, ids: list[int], model: str | None = None) -> str:
        return self.registry.get(model).detokenize(ids)

    def vocab_size(self, model: str | None = None) -> int | None:
        """The vocabulary size the model declares (None: unknown; the backend checks ids)."""
        return self.registry.get(model).describe().vocab_size

    def chat_prompt_ids(self, messages: list[dict[str, Any]], prompt_type: str = "",
                        chat_template: str = "", model: str | None = None) -> list[int]:
        return self.registry.get(model).chat_prompt_ids(
            messages, prompt_type or self.settings.prompt_type, chat_template or self.settings.chat_template)

    def next_token_probs(self, request: LogitsRequest) -> list[tuple[str, float]]:
        backend = self.registry.get(request.model)
        if not isinstance(backend, NextTokenSource):
            raise UnsupportedFeatureError(f"the {backend.describe().backend} backend of {backend.name!r} "
                                          "cannot give next-token probabilities", param="model")
        return backend.next_token_probs(request)

    def context_window(self, model: str | None = None) -> int:
        return int(self.registry.get(model).context_window)

    def stats(self) -> dict[str, int]:
        """running, queued, kv_cache_used_tokens, kv_cache_capacity_tokens (all models)."""
        total = {"running": 0, "queued": 0, "kv_cache_used_tokens": 0, "kv_cache_capacity_tokens": 0}
        for backend in self.registry:
            for key, value in backend.stats().items():
                total[key] = total.get(key, 0) + int(value)
        return total
# ---- end of the engine adapter ------------------------------------------------------------


class RateLimits:
    """A moving-window limiter shared by every worker: ``hit(identity, limit)``, counted in
    ``storage`` (a ``limits`` storage URI: memory://, or redis://HOST:PORT for a fleet)."""

    def __init__(self, storage: str = "memory://") -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage))
        self._items: dict[str, list[RateLimitItem]] = {}
        self._lock = threading.Lock()

    def _parsed(self, limit: str) -> list[RateLimitItem]:
        items = self._items.get(limit)
        if items is None:
            try:
                items = self._items[limit] = parse_many(limit)
            except ValueError:
                raise InvalidParamsError(f"not a rate limit: {limit!r}") from None
        return items

    def hit(self, identity: str, limit: str) -> RateVerdict:
        """{allowed, limit, remaining, reset (epoch seconds when a slot frees)}: a hit is
        counted only when every limit of ``limit`` ('10/second;100/minute') has room."""
        with self._lock:
            items = self._parsed(limit)
            if len(items) == 1:  # one atomic hit: instances sharing the store never overshoot
                full = [] if self._limiter.hit(items[0], identity) else items
            else:
                full = [i for i in items if not self._limiter.test(i, identity)]
            if not full and len(items) > 1:
                for item in items:
                    self._limiter.hit(item, identity)
            tightest = full[0] if full else min(
                items, key=lambda i: self._limiter.get_window_stats(i, identity).remaining)
            stats = self._limiter.get_window_stats(tightest, identity)
        return RateVerdict(allowed=not full, limit=tightest.amount, remaining=int(stats.remaining),
                           reset=float(stats.reset_time))


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Chat messages to tokenize as the model reads them; images cannot be counted here."""
    if not messages:
        raise InvalidParamsError("messages must be a non-empty list", param="messages")
    if any(m.images() for m in messages):
        raise InvalidParamsError("messages with images cannot be tokenized: give their text only",
                                 param="messages")
    return [local_content(backend_message(m)) for m in messages]


class OpsMethods:
    """The handlers; each takes the IPC args dict and returns msgpack-able data."""

    def __init__(self, engine: EngineAdapter, metrics: EngineMetrics | None) -> None:
        self.engine = engine
        self.metrics = metrics
        self.rate_limits = RateLimits(engine.settings.rate_limit_storage)

    def tokenize(self, request: TokenizeRequest) -> TokenizeResult:
        """A prompt text, or chat messages as the model reads them -> vLLM's
        {count, max_model_len, tokens, token_strs?}."""
        model = request.model
        if request.messages is not None:
            ids = self.engine.chat_prompt_ids(_messages(request.messages), request.prompt_type,
                                              request.chat_template, model)
        else:
            ids = self.engine.tokenize(request.prompt or "", request.add_special_tokens, model)
        strs = [self.engine.detokenize([i], model) for i in ids] if request.return_token_strs else None
        return TokenizeResult(count=len(ids), max_model_len=self.engine.context_window(model), tokens=ids,
                              token_strs=strs)

    def chat_prompt(self, request: TokenizeRequest) -> ChatPrompt:
        """The prompt text ``messages`` render to with the model's chat template (its token
        ids, as /tokenize counts them, back to text with the special tokens)."""
        ids = self.engine.chat_prompt_ids(_messages(request.messages or []), request.prompt_type,
                                          request.chat_template, request.model)
        return ChatPrompt(prompt=self.engine.detokenize(ids, request.model))

    def logits(self, request: LogitsRequest) -> LogitsResult:
        """The next token's most likely texts and probabilities (src/engine/next_token.py)."""
        validate(request)
        return LogitsResult(probs=self.engine.next_token_probs(request))

    def detokenize(self, request: DetokenizeRequest) -> DetokenizeResult:
        """Token ids -> text; ids outside the vocabulary are a 400 naming its size (a backend
        that does not say its size, a remote one, checks them itself)."""
        vocab = self.engine.vocab_size(request.model)
        if any(i < 0 or (vocab is not None and i >= vocab) for i in request.tokens):
            bound = f"[0, {vocab})" if vocab is not None else "non-negative"
            raise InvalidParamsError(f"tokens must be token ids in {bound}", param="tokens")
        return DetokenizeResult(prompt=self.engine.detokenize(request.tokens, request.model))

    def metrics_text(self, _: Empty) -> MetricsText:
        return MetricsText(text=self.metrics.exposition(self.engine.stats()) if self.metrics is not None else b"")

    def observe_http(self, observation: HttpObservation) -> None:
        if self.metrics is not None:
            self.metrics.observe_http(observation.route or "other", observation.status)

    def rate_hit(self, hit: RateHit) -> RateVerdict:
        return self.rate_limits.hit(hit.identity, hit.limit)


def count_tokens(evaluator: Evaluator, text: str) -> int:
    """Tokens of ``text`` without special tokens: h2oGPT's count_tokens (UI and IPC)."""
    return evaluator.registry.default.count_tokens(text)


def register_ops_methods(server: IpcServer, evaluator: Evaluator) -> None:
    """tokenize, detokenize, chat_prompt, logits, metrics, observe_http and rate_hit."""
    methods = OpsMethods(EngineAdapter(evaluator), metrics_of(evaluator))
    server.register_typed("tokenize", TokenizeRequest, methods.tokenize)
    server.register_typed("detokenize", DetokenizeRequest, methods.detokenize)
    server.register_typed("chat_prompt", TokenizeRequest, methods.chat_prompt)
    server.register_typed("logits", LogitsRequest, methods.logits)
    server.register_typed("metrics", Empty, methods.metrics_text)
    server.register_typed("observe_http", HttpObservation, methods.observe_http)
    server.register_typed("rate_hit", RateHit, methods.rate_hit)
