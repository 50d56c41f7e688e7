"""A recording OpenAI-compatible server (tests only): it keeps every body it is sent and
answers from a script, streamed as OpenAI streams (the remote backend always streams).

It stands in as ``--inference_server=openai_chat:URL`` where a test must see exactly what
the engine forwards (messages, tools, response_format, seed, ...) and control what comes
back (text, or tool calls with ids of its own). A non-streamed ``/v1/completions`` answers
one token with :attr:`RecordingServer.top_logprobs` (the next-token probabilities). It also serves vLLM's /tokenize and
/detokenize with a byte-level tokenizer (a token is a UTF-8 byte), so a round trip is exact.

    with RecordingServer() as remote:
        remote.script.append(Reply(tool_calls=[("call_remote_1", "get_weather", '{"city": "Paris"}')]))
        ...  # run the app against remote.base_url
        remote.bodies[-1]["messages"]
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "recorded/model"
VOCAB = 256


@dataclass
class Reply:
    """One scripted answer: text, or tool calls as (id, name, arguments JSON)."""

    text: str = ""
    tool_calls: list[tuple[str, str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _json(self, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 1,
                                                   "owned_by": "test", "max_model_len": 4096}]})
        else:
            self._json({"error": {"message": "not found"}}, 404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        recorder = self.server.recorder
        if self.path == "/tokenize":
            text = body.get("prompt")
            if text is None:  # chat messages: their texts, one per line
                text = "\n".join(str(m.get("content") or "") for m in body.get("messages") or [])
            tokens = list(str(text).encode())
            self._json({"tokens": tokens, "count": len(tokens), "max_model_len": 4096})
            return
        if self.path == "/detokenize":
            tokens = body.get("tokens") or []
            if any(not isinstance(t, int) or not 0 <= t < VOCAB for t in tokens):
                self._json({"error": {"message": f"token ids must be in [0, {VOCAB})"}}, 400)
                return
            self._json({"prompt": bytes(tokens).decode(errors="replace")})
            return
        if self.path == "/v1/completions" and not body.get("stream"):  # one token, with its top log probs
            with recorder.lock:
                recorder.bodies.append(body)
            top = dict(list(recorder.top_logprobs.items())[:int(body.get("logprobs") or 0)])
            first = next(iter(top), "")
            self._json({"id": "cmpl-recorded", "object": "text_completion", "created": 1, "model": MODEL,
                        "choices": [{"index": 0, "text": first, "finish_reason": "length", "logprobs": {
                            "tokens": [first], "token_logprobs": [top.get(first)], "top_logprobs": [top]}}]})
            return
        if self.path != "/v1/chat/completions":
            self._json({"error": {"message": f"no {self.path}"}}, 404)
            return
        with recorder.lock:
            recorder.bodies.append(body)
            reply = recorder.script.pop(0) if recorder.script else Reply(text="ok")
        self._stream(reply)

    def _stream(self, reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        base = {"id": "chatcmpl-recorded", "object": "chat.completion.chunk", "created": 1, "model": MODEL}

        def send(choice: dict[str, Any] | None, usage: dict[str, int] | None = None) -> None:
            chunk = {**base, "choices": [choice] if choice else []}
            if usage:
                chunk["usage"] = usage
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()

        send({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})
        for word in reply.text.split(" ") if reply.text else []:
            send({"index": 0, "delta": {"content": word + " "}, "finish_reason": None})
        for i, (call_id, name, arguments) in enumerate(reply.tool_calls):
            send({"index": 0, "delta": {"tool_calls": [{"index": i, "id": call_id, "type": "function",
                                                         "function": {"name": name, "arguments": ""}}]},
                  "finish_reason": None})
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                send({"index": 0, "delta": {"tool_calls": [{"index": i, "function": {"arguments": piece}}]},
                      "finish_reason": None})
        send({"index": 0, "delta": {}, "finish_reason": "tool_calls" if reply.tool_calls else "stop"})
        send(None, {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, recorder: RecordingServer) -> None:
        self.recorder = recorder
        super().__init__(("127.0.0.1", 0), _Handler)


class RecordingServer:
    """The server, on a free loopback port, in a thread; a context manager."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.script: list[Reply] = []
        #: The next token's log probs that a one-token /v1/completions answers, most likely first.
        self.top_logprobs: dict[str, float] = {f" t{i}": math.log(0.5 ** (i + 1)) for i in range(30)}
        self.lock = threading.Lock()
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> RecordingServer:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="recording-server").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
