"""A scripted engine client for unit tests of the API (tests only, never product code).

It implements the contract's Engine protocol (src/contract/): ``evaluate`` streams the
words of a scripted answer as EvalEvents and records the requests it was given (after a
round trip through the IPC's codec, as the engine would decode them).
Like the real engine, a streamed answer opens with an empty "started" chunk; ``hold``,
when set, keeps the answer waiting after that chunk until the event is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import msgspec

from src.contract import (
    ChatPrompt,
    DetokenizeRequest,
    DetokenizeResult,
    EvalEvent,
    EvaluateRequest,
    FinishReason,
    Health,
    HttpObservation,
    LogitsRequest,
    LogitsResult,
    MetricsText,
    ModelInfo,
    RateHit,
    RateVerdict,
    Source,
    Stopped,
    StopRequest,
    TokenizeRequest,
    TokenizeResult,
    TokenLogprob,
    ToolCallDelta,
)
from src.errors import EngineUnavailableError, QueueTimeoutError, UnknownModelError
from src.evaluate import cut_tool_calls, merged_calls
from src.ipc.codec import decode, encode
from src.tools import ToolCallStream

MODEL = "test/model"


class FakeEngine:
    def __init__(self, answer: str = "Hello there friend", sources: list[dict[str, Any]] | None = None):
        self.answer = answer
        self.sources = sources or []
        self.calls: list[dict[str, Any]] = []  # the parameters of each evaluate request
        self.requests: list[EvaluateRequest] = []
        self.fail_with: Exception | None = None
        self.fail_after: int | None = None  # raise after this many chunks
        self.hold: asyncio.Event | None = None
        self.logits_requests: list[LogitsRequest] = []
        self.stopped: list[str] = []  # requester names of stop_generation calls
        self.model_lists = 0  # models() calls

    async def call(self, method: str, args: dict[str, Any] | None = None,
                   timeout: float | None = None) -> Any:
        if isinstance(self.fail_with, EngineUnavailableError):
            raise self.fail_with
        raise AssertionError(method)

    async def models(self, timeout: float | None = 10) -> list[ModelInfo]:
        self.model_lists += 1
        if isinstance(self.fail_with, EngineUnavailableError):
            raise self.fail_with
        return [ModelInfo(id=MODEL, backend="transformers", context_window=2048, created=1)]

    async def health(self, timeout: float | None = None) -> Health:
        if isinstance(self.fail_with, EngineUnavailableError):
            raise self.fail_with
        return Health(ready=True, model=MODEL, models=[MODEL], active_requests=0)

    async def tokenize(self, request: TokenizeRequest) -> TokenizeResult:
        ids = [len(w) for w in (request.prompt or "").split()]
        return TokenizeResult(count=len(ids), max_model_len=2048, tokens=ids)

    async def detokenize(self, request: DetokenizeRequest) -> DetokenizeResult:
        return DetokenizeResult(prompt=" ".join("x" * i for i in request.tokens))

    async def logits(self, request: LogitsRequest) -> LogitsResult:
        self.logits_requests.append(decode(LogitsRequest, encode(request)))
        return LogitsResult(probs=[(" a", 0.5), (" b", 0.25), (" a", 0.125)])  # " a" twice: two ids, one text

    async def chat_prompt(self, request: TokenizeRequest) -> ChatPrompt:
        return ChatPrompt(prompt="".join(f"<{m.role}>{m.text()}" for m in request.messages or []))

    async def stop_generation(self, request: StopRequest) -> Stopped:
        self.stopped.append(request.requester.name)
        return Stopped(stopped=0)

    async def metrics(self) -> MetricsText:
        return MetricsText(text=b"")

    async def observe_http(self, observation: HttpObservation) -> None:
        return None

    async def rate_hit(self, hit: RateHit) -> RateVerdict:
        return RateVerdict(allowed=True)

    def stream(self, method: str, args: dict[str, Any] | None = None) -> AsyncGenerator[Any, None]:
        raise AssertionError(method)

    async def evaluate(self, request: EvaluateRequest) -> AsyncGenerator[EvalEvent, None]:
        # What the engine would have decoded: the request through the real codec.
        request = decode(EvaluateRequest, encode(request))
        self.requests.append(request)
        args = request.params.model_dump(exclude_unset=True)
        self.calls.append(args)
        if self.fail_with is not None and self.fail_after is None:
            raise self.fail_with
        asked = args.get("visible_models")
        if asked not in (None, "", MODEL, [MODEL]):  # as the engine's registry refuses it
            raise UnknownModelError(f"the model {asked!r} does not exist; served: {MODEL}")
        first = True  # the engine names the model in an answer's first event
        words = self.answer.split(" ")
        max_new = args.get("max_new_tokens", 256)
        words = words[:max_new]
        prompt_tokens = len(str(args.get("instruction", "")).split())
        streaming = args.get("stream_output", True)
        response = ""
        if streaming:
            first = False
            yield EvalEvent(prompt_tokens=prompt_tokens, model=MODEL)
        if self.hold is not None:
            await self.hold.wait()
        sources = [msgspec.convert(s, Source) for s in self.sources]
        cutter = ToolCallStream() if args.get("tools") and args.get("tool_choice") != "none" else None
        calls: list[ToolCallDelta] = []  # as the engine cuts a constrained answer into typed calls
        for i, word in enumerate(words):
            if self.fail_after is not None and i == self.fail_after:
                raise self.fail_with or QueueTimeoutError("late")
            delta = word if i == 0 else " " + word
            response += delta
            last = i == len(words) - 1
            reason = ("length" if len(words) == max_new and len(self.answer.split()) > max_new else "stop")
            logprobs = [TokenLogprob(delta, -0.5, ((delta, -0.5), ("x", -2.0)))] if args.get("logprobs") else []
            cut: list[ToolCallDelta] = []
            if cutter is not None:
                delta, cut = cut_tool_calls(cutter, delta, last)
                calls += cut
                if last and calls and reason == "stop":
                    reason = "tool_calls"
            event = EvalEvent(delta=delta, sources=sources if last else [], prompt_tokens=prompt_tokens,
                              completion_tokens=i + 1, finish_reason=FinishReason(reason) if last else None,
                              logprobs=logprobs, tool_calls=cut)
            if streaming or last:
                if last and not streaming:
                    whole = "".join(v for k, v in ToolCallStream().feed(response, True) if k == "text") \
                        if cutter is not None else response
                    event = msgspec.structs.replace(event, delta=whole, tool_calls=merged_calls(calls), logprobs=[
                        TokenLogprob(w if j == 0 else " " + w, -0.5) for j, w in enumerate(words)
                    ] if args.get("logprobs") else [])
                yield msgspec.structs.replace(event, model=MODEL) if first else event
                first = False
