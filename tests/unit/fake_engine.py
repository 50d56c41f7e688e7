"""A scripted engine client for unit tests of the API (tests only, never product code).

It speaks the EngineClient protocol of openai_server.serving: ``evaluate`` streams the
words of a scripted answer as EvalChunk dicts and records the parameters it was given.
Like the real engine, a streamed answer opens with an empty "started" chunk; ``hold``,
when set, keeps the answer waiting after that chunk until the event is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from src.errors import EngineUnavailableError, QueueTimeoutError

MODEL = "test/model"


class FakeEngine:
    def __init__(self, answer: str = "Hello there friend", sources: list[dict[str, Any]] | None = None):
        self.answer = answer
        self.sources = sources or []
        self.calls: list[dict[str, Any]] = []
        self.fail_with: Exception | None = None
        self.fail_after: int | None = None  # raise after this many chunks
        self.hold: asyncio.Event | None = None

    async def call(self, method: str, args: dict[str, Any] | None = None,
                   timeout: float | None = None) -> Any:
        if isinstance(self.fail_with, EngineUnavailableError):
            raise self.fail_with
        if method == "models":
            return [{"id": MODEL, "created": 1, "owned_by": "h2oGPT"}]
        if method == "health":
            return {"ready": True, "model": MODEL, "active_requests": 0}
        raise AssertionError(method)

    async def stream(self, method: str, args: dict[str, Any] | None = None) -> AsyncGenerator[Any, None]:
        assert method == "evaluate"
        args = dict(args or {})
        self.calls.append(args)
        if self.fail_with is not None and self.fail_after is None:
            raise self.fail_with
        words = self.answer.split(" ")
        max_new = args.get("max_new_tokens", 256)
        words = words[:max_new]
        prompt_tokens = len(str(args.get("instruction", "")).split())
        streaming = args.get("stream_output", True)
        response = ""
        if streaming:
            yield {"delta": "", "response": "", "sources": [], "prompt_tokens": prompt_tokens,
                   "completion_tokens": 0, "finish_reason": None, "logprobs": []}
        if self.hold is not None:
            await self.hold.wait()
        for i, word in enumerate(words):
            if self.fail_after is not None and i == self.fail_after:
                raise self.fail_with or QueueTimeoutError("late")
            delta = word if i == 0 else " " + word
            response += delta
            last = i == len(words) - 1
            reason = ("length" if len(words) == max_new and len(self.answer.split()) > max_new else "stop")
            chunk = {
                "delta": delta, "response": response, "sources": self.sources if last else [],
                "prompt_tokens": prompt_tokens, "completion_tokens": i + 1,
                "finish_reason": reason if last else None,
                "logprobs": [{"token": delta, "logprob": -0.5, "top": [[delta, -0.5], ["x", -2.0]]}]
                if args.get("logprobs") else [],
            }
            if streaming or last:
                if last and not streaming:
                    chunk["delta"] = response
                    chunk["logprobs"] = [
                        {"token": w if j == 0 else " " + w, "logprob": -0.5, "top": []}
                        for j, w in enumerate(words)
                    ] if args.get("logprobs") else []
                yield chunk
