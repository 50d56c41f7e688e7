"""The remote backend: generation on an OpenAI-compatible engine (vLLM, llama.cpp, another
instance of this product, any OpenAI-compatible server), behind the Backend interface.

One pooled ``httpx.Client`` per backend carries every request. A request's stream is the
*source* of its :class:`RequestHandle`: read by the thread that iterates the handle (one
wake-up per token in this process, not two), or by a thread of its own when the caller
reads several handles in turn (``RequestHandle.background``):

- the first (empty) event goes out when the remote has accepted the request (its 200), so a
  refusal or an unreachable server still becomes a clean error envelope, not a broken stream;
- a cancelled handle (or the caller's cancel event) closes the stream, which makes vLLM and
  llama.cpp abort the generation;
- connection refused or a connect timeout is a 503 naming the server, a read timeout a 504,
  a remote 4xx a 400 with the remote's own message; the backend's ``state`` (``up``,
  ``down``) is what /health shows, and requests succeed again as soon as the server is back;
- token counts come from the remote's usage (``stream_options.include_usage``).

The wire format (bodies, chunks, tool calls) is src/engine/remote_wire.py.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from src.contract import LogitsRequest, ModelInfo
from src.engine.backend import model_info
from src.engine.handle import RequestHandle
from src.engine.next_token import remote_probs
from src.engine.remote_spec import RemoteSpec
from src.engine.remote_wire import (
    ChunkReader,
    WireDialect,
    ends_with_assistant,
    finish_reason,
    plain_text,
)
from src.engine.textstream import StopScanner
from src.engine.types import Capabilities, FinishReason, GenerationRequest, Message, TokenEvent
from src.errors import (
    ContextLengthError,
    DomainError,
    RemoteRejectedError,
    RemoteTimeoutError,
    RemoteUnavailableError,
    UnsupportedFeatureError,
)
from src.params import EXTRA_SAMPLERS

log = logging.getLogger(__name__)

DEFAULT_CONTEXT = 4096


class StreamedResponse(Protocol):
    """What this backend reads of a streamed response (httpx's, or loopback_http's)."""

    status_code: int

    def read(self) -> bytes: ...

    def json(self) -> Any: ...

    @property
    def text(self) -> str: ...

    def iter_bytes(self) -> Iterator[bytes]: ...


@dataclass
class Progress:
    """One answer's state across the remote requests that make it (two for min_new_tokens on
    llama.cpp)."""

    started: bool = False
    final: bool = True
    prompt_tokens: int = 0
    offset: int = 0  # completion tokens of earlier phases
    completion_tokens: int = 0
    text: str = ""
    finish: FinishReason | None = None
    stop_sequence: str | None = None  # the stop string the answer ended at


class RemoteBackend:
    """A model served by a remote engine. ``name`` is the id /v1/models lists here;
    ``remote_model`` the id sent to the remote (discovered from its /v1/models when not given)."""

    #: Cut the answer at the request's stop strings here (the remote is not sent them), so
    #: that the final event names the one that matched; a remote that names it itself
    #: (vLLM's ``stop_reason``) is sent them.
    scans_stop = False

    def __init__(
        self,
        spec: RemoteSpec,
        name: str = "",
        remote_model: str = "",
        connect_timeout: float = 5.0,
        read_timeout: float = 600.0,
        concurrency: int = 64,
        context_window: int | None = None,
        vision: bool = True,
    ) -> None:
        """``vision``: image parts are forwarded (the remote answers whether it reads them);
        False declares the remote model text-only, and images are refused here (400)."""
        self.spec = spec
        self.vision = vision
        self.dialect = self.wire_dialect(spec)
        self.read_timeout = read_timeout
        self.client = httpx.Client(
            base_url=spec.base_url,
            headers={"Authorization": f"Bearer {spec.api_key}"},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8),
            trust_env=False,  # never through a proxy from the environment
        )
        self.state = "unknown"
        self.last_error = ""
        self._ids = itertools.count(1)
        self._active = 0
        self._lock = threading.Lock()
        self._context = context_window
        self._vocab: int | None = None
        self.remote_model = remote_model
        self._counted = functools.lru_cache(maxsize=4096)(lambda text: len(self.tokenize(text)))
        self._discover(name or remote_model)
        self._name = name or self.remote_model or spec.base_url

    def wire_dialect(self, spec: RemoteSpec) -> WireDialect:
        """How this engine reads OpenAI's wire format (a subclass may speak its own)."""
        return WireDialect(spec)

    # --- discovery and state -----------------------------------------------------------------
    def _discover(self, wanted: str) -> None:
        """Ask the remote's /v1/models for the model id and its context window (best effort:
        a server that is down now is asked again at the first request that reaches it)."""
        try:
            response = self.client.get("/models")
            response.raise_for_status()
            models = response.json().get("data") or []
        except (httpx.HTTPError, ValueError) as exc:
            self._down(exc)
            log.warning("inference server %s: %s; requests will fail with 503 until it answers",
                        self.spec, self.last_error)
            return
        self._up()
        ids = [str(m.get("id")) for m in models]
        pick = next((m for m in models if wanted and m.get("id") == wanted), models[0] if models else {})
        if not self.remote_model:
            self.remote_model = str(pick.get("id") or "")
        meta = pick.get("meta") or {}
        if meta.get("n_vocab"):  # llama.cpp's server says its vocabulary size
            self._vocab = int(meta["n_vocab"])
        if self._context is None:
            window = pick.get("max_model_len") or meta.get("n_ctx") or meta.get("n_ctx_train")
            self._context = int(window) if window else None
        log.info("inference server %s serves %s; using %s", self.spec, ids, self.remote_model)

    def _up(self) -> None:
        self.state, self.last_error = "up", ""

    def _down(self, exc: BaseException) -> None:
        self.state = "down"
        self.last_error = f"{type(exc).__name__}: {exc}"

    def health(self) -> dict[str, str]:
        """Probe the remote now (GET /v1/models): ``up``, or ``down`` with the error."""
        try:
            self.client.get("/models", timeout=2.0).raise_for_status()
            if not self.remote_model:
                self._discover(self._name)
            self._up()
        except httpx.HTTPError as exc:
            self._down(exc)
        return {"state": self.state, "error": self.last_error} if self.state != "up" else {"state": "up"}

    # --- Backend ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def context_window(self) -> int:
        return self._context or DEFAULT_CONTEXT

    @property
    def capabilities(self) -> Capabilities:
        chat = self.spec.chat  # tools need chat completions; the remote calls them itself
        return Capabilities(logprobs=True, logit_bias=True, constrained_decoding=True,
                            tools=chat, native_tools=chat, passthrough=True, vision=self.vision,
                            samplers=frozenset(EXTRA_SAMPLERS))  # the remote says what it lacks

    @property
    def active_requests(self) -> int:
        return self._active

    def submit(self, request: GenerationRequest, cancel: threading.Event | None = None) -> RequestHandle:
        """The handle of ``request``, streamed from the remote when it is read; a request it
        cannot carry (tools on a text-completion server, an unsupported constraint) is
        refused here, before any I/O."""
        path, body = self.dialect.request_body(request, self.remote_model)  # raises for what cannot be sent
        handle = RequestHandle(next(self._ids), request, None, cancel,
                               source=lambda: self._events(handle, path, body))
        return handle

    def _renders_chat(self, request: GenerationRequest) -> bool:
        """A chat sent as a text completion that the remote's own template renders (vLLM)."""
        return (bool(request.messages) and request.prompt_type != "plain" and not self.dialect.uses_chat(request)
                and self.spec.vllm)

    def _chat_prompt(self, messages: Sequence[Message]) -> list[int] | str:
        """The prompt of a chat that :meth:`_renders_chat`: vLLM's /tokenize of it."""
        return self.chat_prompt_ids(messages)

    def _events(self, handle: RequestHandle, path: str, body: dict[str, Any]) -> Iterator[TokenEvent]:
        """The events of one request, with transport failures turned into domain errors."""
        with self._lock:
            self._active += 1
        try:
            request = handle.request
            if self._renders_chat(request):
                body["prompt"] = self._chat_prompt(request.messages)
            yield from self._generate(handle, path, body)
        except DomainError:
            raise
        except (httpx.HTTPError, OSError, http.client.HTTPException) as exc:  # httpx, or http.client on loopback
            raise self._transport_error(exc) from None
        except Exception as exc:  # a bug here must not hang the caller
            log.exception("remote request failed")
            raise RemoteUnavailableError(f"the inference server {self.spec} failed: {exc}") from None
        finally:
            with self._lock:
                self._active -= 1

    def _transport_error(self, exc: BaseException) -> DomainError:
        """A read timeout is a 504; a connect timeout or any other failure to talk to the
        server a 503, and the server is ``down`` until it answers again."""
        if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | TimeoutError):
            return RemoteTimeoutError(f"the inference server {self.spec} did not answer in time")
        self._down(exc)
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return RemoteUnavailableError(f"the inference server {self.spec} did not accept a connection in time")
        return RemoteUnavailableError(f"the inference server {self.spec} cannot be reached ({type(exc).__name__})")

    def _generate(self, handle: RequestHandle, path: str, body: dict[str, Any]) -> Iterator[TokenEvent]:
        """Stream the answer of one request body (a subclass may need several)."""
        yield from self._stream(handle, path, body, path == "/chat/completions", Progress())

    def _stream(self, handle: RequestHandle, path: str, body: dict[str, Any], chat: bool,
                progress: Progress) -> Iterator[TokenEvent]:
        """Stream one remote request's events; ``progress`` says whether the request
        already started (a second phase) and whether this stream's end is the answer's end."""
        options = handle.request.options
        deadline = handle.submitted + options.max_time if options.max_time else None
        with self._post_stream(path, body) as response:
            if response.status_code >= 400:
                response.read()
                raise self._refusal(response)
            self._up()
            if not progress.started:
                if not handle.start():
                    return
                yield TokenEvent("", 0, 0)
            constraint = handle.request.constraint
            reader = ChunkReader(chat, top_logprobs=options.logprobs, wrap_call=constraint is not None
                                 and constraint.kind == "tool_call" and bool(constraint.value["required"]))
            finish: FinishReason | None = None
            scanner = StopScanner(options.stop) if self.scans_stop and options.stop else None
            for lines in _sse_data(response):  # the events of one network read, together
                if handle.is_cancelled():
                    finish = "cancelled"
                    break
                if deadline is not None and time.monotonic() > deadline:
                    finish = "length"
                    break
                text, logprobs, calls, done = "", [], [], False
                for data in lines:
                    if data == b"[DONE]":
                        done = True
                        break
                    chunk = json.loads(data)
                    if isinstance(chunk, dict) and chunk.get("error"):
                        raise RemoteRejectedError(f"the inference server {self.spec} stopped the answer: "
                                                  f"{_message(chunk)}")
                    piece, pieces, called, remote_finish = reader.read(chunk)
                    text += piece
                    logprobs += pieces
                    calls += called
                    if remote_finish is not None:
                        finish = finish_reason(remote_finish)
                if scanner is not None:
                    text = scanner.feed(text)
                    if scanner.matched is not None:
                        finish, done = "stop", True
                if text or logprobs or calls:
                    progress.text += text
                    yield TokenEvent(text, progress.prompt_tokens or reader.prompt_tokens,
                                     progress.offset + reader.completion_tokens, None, tuple(logprobs),
                                     tuple(calls))
                if done:
                    break
            tail = scanner.flush() if scanner is not None else ""
            if tail:
                progress.text += tail
                yield TokenEvent(tail, progress.prompt_tokens or reader.prompt_tokens,
                                 progress.offset + reader.completion_tokens)
            progress.finish = finish or "stop"
            progress.stop_sequence = scanner.matched if scanner is not None else reader.stop_sequence
            progress.prompt_tokens = progress.prompt_tokens or reader.prompt_tokens
            progress.completion_tokens = progress.offset + reader.completion_tokens
            if progress.final:
                yield TokenEvent("", progress.prompt_tokens, progress.completion_tokens, progress.finish,
                                 stop_sequence=progress.stop_sequence if progress.finish == "stop" else None)

    def _post_stream(self, path: str, body: dict[str, Any]) -> contextlib.AbstractContextManager[StreamedResponse]:
        return self.client.stream("POST", path, json=body)

    def _refusal(self, response: StreamedResponse) -> DomainError:
        try:
            message = _message(response.json())
        except ValueError:
            message = response.text[:500]
        status = response.status_code
        lowered = message.lower()
        if status == 400 and ("context" in lowered and ("exceed" in lowered or "maximum" in lowered)):
            return ContextLengthError(f"the prompt does not fit the model's context window: {message}")
        if status in (401, 403):
            return RemoteUnavailableError(f"the inference server {self.spec} refused our API key "
                                          f"({status}): {message}")
        if status == 404 and "model" in lowered:
            return RemoteUnavailableError(f"the inference server {self.spec} does not serve "
                                          f"{self.remote_model!r}: {message}")
        if 400 <= status < 500 and status != 429:
            return RemoteRejectedError(f"the inference server refused the request: {message}")
        return RemoteUnavailableError(f"the inference server {self.spec} answered {status}: {message}")

    # --- tokens ---------------------------------------------------------------------------------
    def _post_root(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.spec.root + path
        try:
            response = self.client.post(url, json=body, timeout=30.0)
        except httpx.HTTPError as exc:
            self._down(exc)
            raise RemoteUnavailableError(f"the inference server {self.spec} cannot be reached") from None
        if response.status_code in (404, 405):
            raise UnsupportedFeatureError(f"the inference server {self.spec} has no {path} endpoint")
        if response.status_code >= 400:
            raise self._refusal(response)
        result: dict[str, Any] = response.json()
        return result

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[int]:
        body = {"model": self.remote_model, "prompt": text, "add_special_tokens": add_special_tokens}
        return [int(i) for i in self._post_root("/tokenize", body)["tokens"]]

    def detokenize(self, ids: Sequence[int]) -> str:
        return str(self._post_root("/detokenize", {"model": self.remote_model, "tokens": list(ids)})["prompt"])

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the remote's tokenizer (cached); a server without a /tokenize
        endpoint gets an estimate of 4 characters a token (document Q&A budgets with it)."""
        try:
            return self._counted(text)
        except UnsupportedFeatureError:
            return max(1, (len(text) + 3) // 4)

    def chat_prompt_ids(self, messages: Sequence[Message], prompt_type: str = "",
                        chat_template: str = "") -> list[int]:
        listed = [dict(m) for m in messages]
        if prompt_type == "plain":
            return self.tokenize(plain_text(listed), add_special_tokens=True)
        final = ends_with_assistant(listed)
        body: dict[str, Any] = {"model": self.remote_model, "messages": listed,
                                "add_generation_prompt": not final, "continue_final_message": final}
        if chat_template:
            body["chat_template"] = chat_template
        return [int(i) for i in self._post_root("/tokenize", body)["tokens"]]

    def next_token_probs(self, request: LogitsRequest) -> list[tuple[str, float]]:
        """The remote's top log probs of a one-token completion (src/engine/next_token.py)."""
        v1 = self.spec.base_url[len(self.spec.root):]
        return remote_probs(lambda path, body: self._post_root(v1 + path, body), self.remote_model, request)

    def describe(self) -> ModelInfo:
        return model_info(self, "remote", vocab_size=self._vocab, inference_server=str(self.spec),
                          remote_model=self.remote_model)

    def stats(self) -> dict[str, int]:
        return {"running": self._active, "queued": 0, "kv_cache_used_tokens": 0,
                "kv_cache_capacity_tokens": 0}

    def shutdown(self) -> None:
        self.client.close()


def _sse_data(response: StreamedResponse) -> Iterator[list[bytes]]:
    """The ``data:`` payloads of a server-sent event stream, grouped by network read: under
    load, tokens that arrived together become one event downstream (one IPC message, one
    SSE chunk), not one each."""
    buffer = b""
    for received in response.iter_bytes():
        buffer += received
        *lines, buffer = buffer.split(b"\n")
        found = [line[5:].strip() for line in (raw.rstrip(b"\r") for raw in lines) if line.startswith(b"data:")]
        if found:
            yield found
    if buffer.rstrip(b"\r").startswith(b"data:"):
        yield [buffer.rstrip(b"\r")[5:].strip()]


def _message(payload: Any) -> str:
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or error)
        if isinstance(payload.get("detail"), str):
            return str(payload["detail"])
        return str(error)
    return str(payload)
